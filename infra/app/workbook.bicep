// The operators' workbook on the Application Insights resource: per tenant the decisions and
// failure reasons over time, the last run, pending holds, poison messages and health.
// workbook.json is the workbook's own JSON (edit it in the portal, then paste it back with
// its resource ids replaced by __APP_INSIGHTS_ID__).

param location string
param tags object
param appInsightsId string
param environmentName string

resource workbook 'Microsoft.Insights/workbooks@2022-04-01' = {
  name: guid(resourceGroup().id, 'teams-number-sync-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Teams Number Sync (${environmentName})'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: replace(loadTextContent('workbook.json'), '__APP_INSIGHTS_ID__', appInsightsId)
  }
}

output workbookId string = workbook.id
