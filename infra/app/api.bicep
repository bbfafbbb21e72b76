// The Function App on the Flex Consumption plan and its app settings.
//
// Every setting the app reads comes from here (shared/config.py is the model; tests/infra
// derives the required ones from it, so a new required setting missing here fails `make test`).
// None of the settings Flex Consumption deprecates is set: FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION are functionAppConfig.runtime, the package comes from the
// deployment container (no WEBSITE_RUN_FROM_PACKAGE, no content share).

param name string
param location string
param tags object
param planId string
param storageAccountName string
param deploymentContainerName string
param identityId string
param identityClientId string
param appInsightsName string
param instanceMemoryMB int
param maximumInstanceCount int
param graphAuth string
param graphClientId string
param keyVaultUri string
param graphCertificateName string
param syncSchedule string
param teamsRequestsPerSecond string
param teamsAppRequestsPerSecond string
param consentRedirectUri string

resource stg 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// The host and the app reach blob, queue and table storage with the identity (no connection
// string: the account refuses shared keys).
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: stg.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: stg.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: stg.properties.primaryEndpoints.table
}

// The worker exports the app's logs and events (host.json telemetryMode OpenTelemetry) with the
// identity's Entra token: Application Insights takes no instrumentation key alone.
var telemetrySettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
  PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME: 'shared' // APP_LOGGER_NAME, shared/core/telemetry_events.py
}

// Graph across the customers' tenants: the multi-tenant app registration, trusting the identity
// (federatedIdentity), or its certificate in Key Vault (certificate, read by the identity).
var graphSettings = {
  GRAPH_AUTH: graphAuth
  GRAPH_CLIENT_ID: graphClientId
  MANAGED_IDENTITY_CLIENT_ID: identityClientId
}
var certificateSettings = {
  GRAPH_CERTIFICATE_KEY_VAULT_URL: keyVaultUri
  GRAPH_CERTIFICATE_NAME: graphCertificateName
}

// App-wide behaviour; each customer tenant's own rules live in its registry record.
var runSettings = {
  SYNC_SCHEDULE: syncSchedule
  TEAMS_REQUESTS_PER_SECOND: teamsRequestsPerSecond
  TEAMS_APP_REQUESTS_PER_SECOND: teamsAppRequestsPerSecond
  CONSENT_REDIRECT_URI: consentRedirectUri
}

var modeSettings = (graphAuth == 'certificate') ? certificateSettings : {}
var appSettings = union(hostSettings, telemetrySettings, graphSettings, runSettings, modeSettings)

module site 'br/public:avm/res/web/site:0.16.0' = {
  name: 'site'
  params: {
    name: name
    location: location
    kind: 'functionapp,linux'
    tags: union(tags, {
      'azd-service-name': 'api'
    })
    serverFarmResourceId: planId
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    managedIdentities: {
      userAssignedResourceIds: [
        identityId
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${stg.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    // azd and the portal deploy with Entra tokens: no publishing user name and password.
    basicPublishingCredentialsPolicies: [
      {
        name: 'ftp'
        allow: false
      }
      {
        name: 'scm'
        allow: false
      }
    ]
    configs: [
      {
        name: 'appsettings'
        properties: appSettings
      }
    ]
  }
}

output name string = site.outputs.name
output defaultHostName string = site.outputs.defaultHostname
output queueServiceUri string = stg.properties.primaryEndpoints.queue
output tableServiceUri string = stg.properties.primaryEndpoints.table
