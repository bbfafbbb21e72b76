// App Service Authentication in front of the HTTP endpoints: a person signs in with Entra ID in
// the operator's tenant and must be in the operator group (the report shows personal data, the
// approval takes numbers away: a function key in a URL is not enough for people). The function
// keys stay: every HTTP function is still authLevel FUNCTION behind this.
//
// The paths in excludedPaths (by default POST /api/sync: it starts runs and answers counts, no
// personal data) stay reachable with the function key alone, for scripts and the portal's
// Test/Run. The approval records the signed-in person (X-MS-CLIENT-PRINCIPAL-NAME) as approver.

param functionAppName string
@description('Client id of the sign-in app registration (single-tenant, the operator\'s tenant).')
param signInClientId string
@description('Object id of the operator group; empty: no one is admitted.')
param operatorGroupId string
@description('Paths reachable with a function key alone (exact paths, e.g. /api/sync).')
param excludedPaths array

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: excludedPaths
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          // Only the operator's tenant issues accepted tokens.
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          clientId: signInClientId
        }
        validation: {
          allowedAudiences: [
            signInClientId
            'api://${signInClientId}'
          ]
          // The sign-in app emits the groups assigned to it (groupMembershipClaims
          // ApplicationGroup); only the operator group's members get past this.
          defaultAuthorizationPolicy: {
            allowedPrincipals: {
              groups: [
                operatorGroupId
              ]
            }
          }
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false // the app needs only who signed in, no tokens kept
      }
    }
  }
}
