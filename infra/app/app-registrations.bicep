extension microsoftGraphV1

// The cross-tenant identity, with the Microsoft Graph Bicep extension (bicepconfig.json):
//  * the multi-tenant app registration every customer's admin consents to once, asking for the
//    application permissions of shared/core/tenant_checks.py (REQUIRED, and POLICY_ASSIGNMENT
//    when main-number policies are used; tests/infra checks both lists against the code), with
//    the Function App's user-assigned identity as its only credential (a federated identity
//    credential: no secret, no certificate);
//  * the sign-in app of App Service Authentication: single-tenant, only the operator group
//    assigned (assignment required), no secret (ID tokens only).
// Deploying it needs Application Administrator (or Cloud Application Administrator) in the
// operator's tenant; README "Deploy" has the same steps as az commands.
// The extension line stays the first line: the offline syntax check blanks it (tree-sitter-bicep
// and pycep do not know it).

@description('The azd environment: names the registrations.')
param environmentName string
@description('Object (principal) id of the Function App\'s user-assigned identity: the credential\'s subject.')
param managedIdentityPrincipalId string
@description('Registered as a redirect URI: where a customer\'s admin lands after consenting.')
param consentRedirectUri string
@description('Ask for TeamsPolicyUserAssign.ReadWrite.All too (main-number policies): every customer\'s consent then includes it.')
param mainNumberPolicies bool
@description('Create the sign-in app of App Service Authentication.')
param signInApp bool
@description('The Function App\'s host name: the sign-in app\'s redirect URI.')
param functionAppHostName string
@description('Object id of the operator group (empty: no one is assigned to the sign-in app).')
param operatorGroupId string

var graphAppId = '00000003-0000-0000-c000-000000000000' // Microsoft Graph
// The least privileged permission of each need (tenant_checks.REQUIRED, in its order).
var requiredPermissions = [
  'GroupMember.Read.All'
  'User.Read.All'
  'TeamsTelephoneNumber.ReadWrite.All'
  'TeamsUserConfiguration.Read.All'
]
// tenant_checks.POLICY_ASSIGNMENT: only tenants with main-number policies need it.
var policyPermissions = [
  'TeamsPolicyUserAssign.ReadWrite.All'
]
var permissions = concat(requiredPermissions, mainNumberPolicies ? policyPermissions : [])
// The token exchange of a managed identity in the public cloud.
var ficAudience = 'api://AzureADTokenExchange'
var ficIssuer = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
var defaultAccessRoleId = '00000000-0000-0000-0000-000000000000'

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource graphApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: 'teams-number-sync-${environmentName}'
  displayName: 'Teams Number Sync (${environmentName})'
  signInAudience: 'AzureADMultipleOrgs'
  web: {
    redirectUris: [
      consentRedirectUri
    ]
  }
  requiredResourceAccess: [
    {
      resourceAppId: graphAppId
      resourceAccess: [for permission in permissions: {
        id: first(filter(graph.appRoles, role => role.value == permission)).id
        type: 'Role'
      }]
    }
  ]
}

// The identity as the app registration's credential. Wrong values are accepted here and fail
// only when a token is asked for: issuer, subject and audience are exactly what the identity's
// token carries. (A top-level resource, not nested: pycep-parser drops nested resources.)
resource functionAppIdentity 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${graphApp.uniqueName}/function-app-identity'
  description: 'The Function App\'s user-assigned identity'
  issuer: ficIssuer
  subject: managedIdentityPrincipalId
  audiences: [
    ficAudience
  ]
}

resource signIn 'Microsoft.Graph/applications@v1.0' = if (signInApp) {
  uniqueName: 'teams-number-sync-signin-${environmentName}'
  displayName: 'Teams Number Sync sign-in (${environmentName})'
  signInAudience: 'AzureADMyOrg'
  groupMembershipClaims: 'ApplicationGroup'
  web: {
    redirectUris: [
      'https://${functionAppHostName}/.auth/login/aad/callback'
    ]
    implicitGrantSettings: {
      enableIdTokenIssuance: true
    }
  }
}

resource signInPrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = if (signInApp) {
  appId: signIn.appId
  appRoleAssignmentRequired: true // only those assigned (the operator group) get a token
}

resource operatorGroupAssignment 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (signInApp && !empty(operatorGroupId)) {
  appRoleId: defaultAccessRoleId
  principalId: operatorGroupId
  resourceId: signInPrincipal.id
}

output graphClientId string = graphApp.appId
output signInClientId string = signInApp ? signIn.appId : ''
output ficIssuer string = ficIssuer
output ficAudience string = ficAudience
