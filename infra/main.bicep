// Teams Number Sync on Azure Functions Flex Consumption, provisioned by `azd up`.
//
// One resource group holds everything: the Function App's user-assigned identity (the only
// credential anywhere: storage, Application Insights, Key Vault and the customers' tenants all
// trust it), the storage account (no shared keys), Log Analytics + Application Insights (no
// local auth), the alerts and the workbook. app/app-registrations.bicep (Microsoft Graph Bicep
// extension) adds the multi-tenant app registration with the identity as its federated identity
// credential, and the sign-in app of App Service Authentication.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names every resource (with a token) and tags them.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person running azd: gets table and queue data roles so the CLI (python -m shared.cli) works against the account. Empty: none.')
param principalId string = ''

@description('What principalId is: User, or ServicePrincipal when a pipeline runs azd.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('How the app gets Graph tokens for the customer tenants: federatedIdentity (the identity is the app registration\'s credential, no secret) or certificate (the app registration\'s certificate in Key Vault).')
@allowed([
  'federatedIdentity'
  'certificate'
])
param graphAuth string = 'federatedIdentity'

@description('Create the app registrations here (needs Application Administrator or Cloud Application Administrator in the operator\'s tenant). false: pass graphClientId (and signInClientId) of registrations made by hand.')
param manageAppRegistrations bool = true

@description('Client id of the multi-tenant app registration, when manageAppRegistrations is false.')
param graphClientId string = ''

@description('The app registration asks for TeamsPolicyUserAssign.ReadWrite.All too, for tenants with main-number policies (every customer\'s consent then includes it).')
param mainNumberPolicies bool = false

@description('Name of the app registration\'s certificate in Key Vault (graphAuth certificate).')
param graphCertificateName string = 'teams-number-sync-graph'

@description('App Service Authentication (Entra ID, the operator\'s tenant, the operator group) in front of the HTTP endpoints.')
param appServiceAuthentication bool = true

@description('Client id of the sign-in app registration, when manageAppRegistrations is false and appServiceAuthentication is true.')
param signInClientId string = ''

@description('HTTP paths reachable with a function key alone when App Service Authentication is on (exact paths).')
param authenticationExcludedPaths array = [
  '/api/sync'
]

@description('Object id of the Entra group of operator staff who may sign in. Empty: nobody can sign in until it is set (the HTTP endpoints other than POST /api/sync answer 401).')
param operatorGroupId string = ''

@description('Where the alerts are e-mailed.')
param alertEmail string

@description('When the timer runs: NCRONTAB, six fields, seconds first, in UTC (Flex Consumption has no time zone setting).')
param syncSchedule string = '0 */5 * * * *'

@description('Each tenant\'s pace for Graph requests under /admin/teams/ (requests per second, shared by every instance).')
param teamsRequestsPerSecond string = '29'

@description('The app\'s pace for Graph requests under /admin/teams/ across all its tenants (requests per second).')
param teamsAppRequestsPerSecond string = '250'

@description('Where Entra ID sends a customer\'s admin after consenting; registered on the app registration.')
param consentRedirectUri string = 'https://login.microsoftonline.com/common/oauth2/nativeclient'

@description('Memory of each Flex Consumption instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// The Teams pace, not compute, bounds the work: more instances only wait longer for their slot.
@description('Most instances the app scales out to; Flex Consumption accepts 40 to 1000.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
// Known before the app exists, so the sign-in app's redirect URI can be registered first.
var functionAppHostName = '${functionAppName}.azurewebsites.net'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var certificateMode = graphAuth == 'certificate'
var authenticationOn = appServiceAuthentication

// The app's queues (shared/adapters/storage/queue.py) and tables (ensure_tables in
// shared/adapters/storage/claims_and_statuses.py); tests/infra checks both lists against the code.
var queueNames = [
  'tenant-syncs'
  'tenant-syncs-poison'
  'number-assignments'
  'number-assignments-poison'
]
var tableNames = [
  'numberclaims'
  'userstatus'
  'directorysnapshot'
  'syncruns'
  'syncleases'
  'holds'
  'effects'
  'policygrants'
  'graphpace'
  'inflight'
  'tenants'
  'tenanthealth'
  'audit'
]

resource rg 'Microsoft.Resources/resourceGroups@2024-11-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// The Function App's identity: user-assigned, because only a user-assigned identity can be a
// federated identity credential of the app registration.
module identity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'br/public:avm/res/storage/storage-account:0.25.0' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    allowSharedKeyAccess: false // identities only: the host, the app and the deployment
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        {
          name: deploymentContainerName
          publicAccess: 'None'
        }
      ]
    }
    queueServices: {
      queues: [for queueName in queueNames: {
        name: queueName
      }]
    }
    tableServices: {
      tables: [for tableName in tableNames: {
        name: tableName
      }]
    }
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.11.1' = {
  name: 'logAnalytics'
  scope: rg
  params: {
    name: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

module appInsights 'br/public:avm/res/insights/component:0.6.0' = {
  name: 'appInsights'
  scope: rg
  params: {
    name: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true // telemetry only with the identity's Entra token
    retentionInDays: 90
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'plan'
  scope: rg
  params: {
    name: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
  }
}

// Certificate mode only: the app registration's certificate, read by the identity as the
// secret of the same name (Flex Consumption cannot load certificates from app settings).
module keyVault 'br/public:avm/res/key-vault/vault:0.13.3' = if (certificateMode) {
  name: 'keyVault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    sku: 'standard'
    enableRbacAuthorization: true
    enablePurgeProtection: true
    softDeleteRetentionInDays: 90
    enableVaultForDeployment: false
    enableVaultForTemplateDeployment: false
    enableVaultForDiskEncryption: false
  }
}

module appRegistrations 'app/app-registrations.bicep' = if (manageAppRegistrations) {
  name: 'appRegistrations'
  scope: rg
  params: {
    environmentName: environmentName
    managedIdentityPrincipalId: identity.outputs.principalId
    consentRedirectUri: consentRedirectUri
    mainNumberPolicies: mainNumberPolicies
    signInApp: authenticationOn
    functionAppHostName: functionAppHostName
    operatorGroupId: operatorGroupId
  }
}

var resolvedGraphClientId = manageAppRegistrations ? appRegistrations.outputs.graphClientId : graphClientId
var resolvedSignInClientId = manageAppRegistrations ? appRegistrations.outputs.signInClientId : signInClientId

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    planId: plan.outputs.resourceId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    appInsightsName: appInsights.outputs.name
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    graphAuth: graphAuth
    graphClientId: resolvedGraphClientId
    keyVaultUri: certificateMode ? keyVault.outputs.uri : ''
    graphCertificateName: graphCertificateName
    syncSchedule: syncSchedule
    teamsRequestsPerSecond: teamsRequestsPerSecond
    teamsAppRequestsPerSecond: teamsAppRequestsPerSecond
    consentRedirectUri: consentRedirectUri
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: appInsights.outputs.name
    keyVaultName: certificateMode ? keyVault.outputs.name : ''
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module authentication 'app/authentication.bicep' = if (authenticationOn) {
  name: 'authentication'
  scope: rg
  params: {
    functionAppName: api.outputs.name
    signInClientId: resolvedSignInClientId
    operatorGroupId: operatorGroupId
    excludedPaths: authenticationExcludedPaths
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: appInsights.outputs.resourceId
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    alertEmail: alertEmail
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: appInsights.outputs.resourceId
    environmentName: environmentName
  }
}

// azd keeps these in .azure/<env>/.env (`azd env get-values`): the CLI's settings for the
// operator's own runs against the account (with `az login` as the credential).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = 'https://${api.outputs.defaultHostName}'
output APPLICATIONINSIGHTS_NAME string = appInsights.outputs.name
output GRAPH_AUTH string = graphAuth
output GRAPH_CLIENT_ID string = resolvedGraphClientId
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output CONSENT_REDIRECT_URI string = consentRedirectUri
output AzureWebJobsStorage__queueServiceUri string = api.outputs.queueServiceUri
output AzureWebJobsStorage__tableServiceUri string = api.outputs.tableServiceUri
