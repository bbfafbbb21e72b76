// The operations alerts: one log search alert per query in infra/alerts/, on the Application
// Insights resource (its customEvents and requests), e-mailed through one action group.
//
// Each query returns a row per thing that is wrong (a tenant, a queue, a function), so every
// rule fires on "Count GreaterThan 0" split by the query's columns named in its header
// ("one alert per ..."), and resolves by itself when the rows are gone. Window, frequency,
// severity and look-back come from each query's header; tests/infra checks them against it.

param location string
param tags object
param appInsightsId string
param actionGroupName string
param alertEmail string

module actionGroup 'br/public:avm/res/insights/action-group:0.8.0' = {
  name: 'actionGroup'
  params: {
    name: actionGroupName
    groupShortName: 'teamsnumsync'
    location: 'global'
    tags: tags
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// loadTextContent needs a literal path: one entry per query.
var alertRules = [
  {
    name: 'poison-message'
    displayName: 'Poison message'
    description: 'A change could not be carried out and waits in a poison queue for a person.'
    query: loadTextContent('../alerts/poison-message.kql')
    severity: 1
    windowSize: 'PT15M'
    evaluationFrequency: 'PT5M'
    queryTimeRange: ''
    dimensions: [
      'tenantId'
      'queue'
    ]
  }
  {
    name: 'sync-missing'
    displayName: 'Sync missing'
    description: 'A tenant had no completed sync for two hours (or twice its own interval).'
    query: loadTextContent('../alerts/sync-missing.kql')
    severity: 1
    windowSize: 'PT2H'
    evaluationFrequency: 'PT15M'
    queryTimeRange: 'P2D'
    dimensions: [
      'tenantId'
    ]
  }
  {
    name: 'function-failures'
    displayName: 'Function failures'
    description: 'A function failed three times or more in 15 minutes.'
    query: loadTextContent('../alerts/function-failures.kql')
    severity: 2
    windowSize: 'PT15M'
    evaluationFrequency: 'PT5M'
    queryTimeRange: ''
    dimensions: [
      'functionName'
    ]
  }
  {
    name: 'mass-unassign-held'
    displayName: 'Mass unassignment held'
    description: 'A run wanted to take back more numbers than the guard allows: holds wait for approval.'
    query: loadTextContent('../alerts/mass-unassign-held.kql')
    severity: 2
    windowSize: 'PT15M'
    evaluationFrequency: 'PT5M'
    queryTimeRange: ''
    dimensions: [
      'tenantId'
      'runId'
    ]
  }
  {
    name: 'tenant-unhealthy'
    displayName: 'Tenant not healthy'
    description: 'The app cannot work for a customer: consent, voice group or Graph.'
    query: loadTextContent('../alerts/tenant-unhealthy.kql')
    severity: 1
    windowSize: 'PT15M'
    evaluationFrequency: 'PT5M'
    queryTimeRange: 'P2D'
    dimensions: [
      'tenantId'
    ]
  }
  {
    name: 'graph-throttled'
    displayName: 'Graph throttling sustained'
    description: 'Graph kept answering 429 for a tenant for half an hour: the one-hour promise is at risk.'
    query: loadTextContent('../alerts/graph-throttled.kql')
    severity: 3
    windowSize: 'PT30M'
    evaluationFrequency: 'PT10M'
    queryTimeRange: ''
    dimensions: [
      'tenantId'
    ]
  }
]

module rules 'br/public:avm/res/insights/scheduled-query-rule:0.5.2' = [for rule in alertRules: {
  name: 'alert-${rule.name}'
  params: {
    name: 'teams-number-sync-${rule.name}'
    location: location
    tags: tags
    alertDisplayName: rule.displayName
    alertDescription: rule.description
    kind: 'LogAlert'
    enabled: true
    autoMitigate: true
    scopes: [
      appInsightsId
    ]
    severity: rule.severity
    windowSize: rule.windowSize
    evaluationFrequency: rule.evaluationFrequency
    queryTimeRange: empty(rule.queryTimeRange) ? null : rule.queryTimeRange
    criterias: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [for dimension in rule.dimensions: {
            name: dimension
            operator: 'Include'
            values: [
              '*'
            ]
          }]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroupResourceIds: [
        actionGroup.outputs.resourceId
      ]
    }
  }
}]

output actionGroupId string = actionGroup.outputs.resourceId
