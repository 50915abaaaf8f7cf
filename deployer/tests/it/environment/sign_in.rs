//! Sign-in: the JWT authorizer on the writing routes, and the environment's own user pool.

use super::*;

#[tokio::test]
async fn sign_in_puts_a_jwt_authorizer_on_the_writing_routes_and_takes_it_off_again() {
    use aws_sdk_apigatewayv2::types::AuthorizationType;
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let api_id = account.api_id("dev").await.expect("api");
    let issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example";
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "--var",
            &format!("auth_issuer={issuer}"),
            "--var",
            "auth_audiences=app-client-1",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        account.deployer(&args)
    };
    let apply = |extra: &[String]| {
        let mut args: Vec<String> = [
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.extend(extra.iter().cloned());
        run(&args)
    };
    let apigateway = aws_sdk_apigatewayv2::Client::new(&account.config);
    let routes = || async {
        let mut routes: Vec<(String, bool)> = apigateway
            .get_routes()
            .api_id(&api_id)
            .send()
            .await
            .expect("routes")
            .items()
            .iter()
            .map(|route| {
                (
                    route.route_key().unwrap_or_default().to_owned(),
                    route.authorization_type() == Some(&AuthorizationType::Jwt)
                        && route.authorizer_id().is_some(),
                )
            })
            .collect();
        routes.sort();
        routes
    };
    // What the release `live` points at runs with (a rollback to an earlier
    // release reuses its version rather than publishing an equal one).
    let environment = || async {
        aws_sdk_lambda::Client::new(&account.config)
            .get_function_configuration()
            .function_name(&names("dev").function)
            .qualifier("live")
            .send()
            .await
            .expect("the live release")
            .environment()
            .and_then(|environment| environment.variables())
            .cloned()
            .unwrap_or_default()
    };

    // Without sign-in, a plan says the API is open.
    let open = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn.zip",
        "--var",
        "memory_mb=512",
    ]);
    assert!(text(&open).contains("The API is open"), "{}", text(&open));

    // Turning it on is an in-place change of the API (its id kept) and the function.
    let mut plan_args: Vec<String> = ["plan", "--env", "dev", "--artifact", "fn.zip"]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
    plan_args.extend(with(&[]));
    let plan = run(&plan_args);
    let shown = text(&plan);
    assert!(shown.contains("~ apigatewayv2_api.http"), "{shown}");
    assert!(!shown.contains("-/+"), "nothing replaced: {shown}");
    assert!(
        shown.contains("PUT /tables/{tableId}/users/{username} (JWT)"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("Sign-in: API Gateway verifies JWTs of {issuer}")),
        "{shown}"
    );
    assert_exit(&apply(&with(&[])), 0);
    assert_eq!(
        account.api_id("dev").await.as_deref(),
        Some(api_id.as_str())
    );

    let authorizers = apigateway
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .expect("authorizers");
    let [authorizer] = authorizers.items() else {
        panic!("one authorizer: {authorizers:?}");
    };
    assert_eq!(
        authorizer.name(),
        Some(format!("{}-jwt", names("dev").http_api).as_str())
    );
    assert_eq!(
        authorizer.authorizer_type().map(|kind| kind.as_str()),
        Some("JWT")
    );
    assert_eq!(
        authorizer.identity_source(),
        ["$request.header.Authorization"]
    );
    let jwt = authorizer.jwt_configuration().expect("JWT configuration");
    assert_eq!(jwt.issuer(), Some(issuer));
    assert_eq!(jwt.audience(), ["app-client-1"]);
    let guarded: Vec<String> = routes()
        .await
        .into_iter()
        .filter(|(_, jwt)| *jwt)
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        guarded,
        [
            "DELETE /tables/{tableId}",
            "DELETE /tables/{tableId}/users/{username}/tasks",
            "PATCH /sessions/{sessionId}",
            "PATCH /tables/{tableId}",
            "PATCH /tables/{tableId}/users/{username}/tasks",
            "POST /sessions",
            "POST /tables",
            "PUT /tables/{tableId}/users/{username}",
            "PUT /tables/{tableId}/users/{username}/moral-compass",
            "PUT /tables/{tableId}/users/{username}/moralcompass"
        ]
    );
    let variables = environment().await;
    assert_eq!(
        variables.get("AUTH_ENABLED").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        variables.get("AUTH_ADMIN_GROUP").map(String::as_str),
        Some("admin")
    );
    assert_eq!(
        variables.get("ALLOW_PUBLIC_READ").map(String::as_str),
        Some("true")
    );
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply(&with(&[])), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Reads behind it too; /health, /openapi.json, $default and reading a
    // session (its id is the capability) stay open.
    assert_exit(&apply(&with(&["--var", "allow_public_read=false"])), 0);
    let open_routes: Vec<String> = routes()
        .await
        .into_iter()
        .filter(|(_, jwt)| !*jwt)
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        open_routes,
        [
            "$default",
            "GET /health",
            "GET /openapi.json",
            "GET /sessions/{sessionId}"
        ]
    );
    assert_eq!(
        environment()
            .await
            .get("ALLOW_PUBLIC_READ")
            .map(String::as_str),
        Some("false")
    );

    // Off again: the authorizer goes, every route is open, the function too.
    let off = apply(&[]);
    assert_exit(&off, 0);
    assert!(routes().await.iter().all(|(_, jwt)| !jwt));
    let left = apigateway
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .expect("authorizers");
    assert!(left.items().is_empty(), "{left:?}");
    assert_eq!(
        environment().await.get("AUTH_ENABLED"),
        None,
        "{}",
        text(&off)
    );

    // Bad settings fail before any AWS call.
    let plain = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--var",
        "auth_issuer=http://issuer.example",
        "--var",
        "auth_audiences=a",
    ]);
    assert_exit(&plain, 1);
    assert!(
        text(&plain).contains("is not an https URL"),
        "{}",
        text(&plain)
    );
    let lonely = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--var",
        &format!("auth_issuer={issuer}"),
    ]);
    assert_exit(&lonely, 1);
    assert!(
        text(&lonely).contains("auth_issuer needs auth_audiences"),
        "{}",
        text(&lonely)
    );
}

/// `auth_create_user_pool`: the environment's own Cognito user pool, with its
/// app client (the authorizer's audience), admin group and sign-in domain.
/// Created and read back, a rerun changes nothing, drift is repaired over what
/// was set by hand, and destroy keeps a pool with accounts until told.
#[tokio::test]
async fn the_environments_own_user_pool_is_the_issuer_and_outlives_a_destroy_while_it_has_accounts()
{
    use aws_sdk_cognitoidentityprovider::types::{
        DeletionProtectionType, PreventUserExistenceErrorTypes,
    };
    let account = Account::bootstrapped().await;
    let pool_vars = [
        "--var",
        "auth_create_user_pool=true",
        "--var",
        // Listed twice: a set, so no perpetual diff.
        "auth_callback_urls=https://app.example/cb,http://localhost:8888/cb,https://app.example/cb",
        "--var",
        "auth_logout_urls=https://app.example/",
    ];
    let with_pool = |args: &[&str]| account.deployer(&[args, &pool_vars[..]].concat());
    let apply = || {
        with_pool(&[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ])
    };
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&account.config);
    let pool_id = || async {
        let pools = cognito
            .list_user_pools()
            .max_results(60)
            .send()
            .await
            .expect("pools");
        pools
            .user_pools()
            .iter()
            .find(|pool| pool.name() == Some(&names("dev").user_pool))
            .and_then(|pool| pool.id().map(str::to_owned))
    };

    let plan = with_pool(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    let shown = text(&plan);
    assert_exit(&plan, 0);
    assert!(shown.contains("+ cognito_user_pool.sign_in"), "{shown}");
    assert!(shown.contains("13 to add"), "{shown}");
    assert!(
        shown.contains(&format!(
            "the environment's own user pool {}",
            names("dev").user_pool
        )),
        "{shown}"
    );
    assert_exit(&apply(), 0);

    // Read back: the pool, its client, group and domain.
    let id = pool_id().await.expect("the pool exists");
    let describe = || async {
        cognito
            .describe_user_pool()
            .user_pool_id(&id)
            .send()
            .await
            .expect("pool")
            .user_pool
            .expect("described")
    };
    let has_admin_group = || async {
        cognito
            .get_group()
            .user_pool_id(&id)
            .group_name("admin")
            .send()
            .await
            .is_ok()
    };
    let pool = describe().await;
    assert_eq!(
        pool.deletion_protection(),
        Some(&DeletionProtectionType::Active)
    );
    assert!(
        pool.admin_create_user_config()
            .is_some_and(|config| config.allow_admin_create_user_only()),
        "only admins create accounts"
    );
    let password = pool
        .policies()
        .and_then(|policies| policies.password_policy())
        .expect("password policy");
    assert_eq!(password.minimum_length(), Some(12));
    assert_eq!(
        pool.user_pool_tags()
            .and_then(|tags| tags.get("managed-by"))
            .map(String::as_str),
        Some("deployer")
    );
    assert_eq!(pool.domain(), Some(names("dev").sign_in_domain.as_str()));
    let clients = cognito
        .list_user_pool_clients()
        .user_pool_id(&id)
        .send()
        .await
        .expect("clients");
    let [listed] = clients.user_pool_clients() else {
        panic!("one client: {clients:?}");
    };
    let client_id = listed.client_id().expect("client id").to_owned();
    let client = cognito
        .describe_user_pool_client()
        .user_pool_id(&id)
        .client_id(&client_id)
        .send()
        .await
        .expect("client")
        .user_pool_client
        .expect("described");
    assert!(client.client_secret().is_none(), "a public client");
    let mut callbacks = client.callback_urls().to_vec();
    callbacks.sort();
    assert_eq!(
        callbacks,
        ["http://localhost:8888/cb", "https://app.example/cb"]
    );
    assert_eq!(
        client.prevent_user_existence_errors(),
        Some(&PreventUserExistenceErrorTypes::Enabled)
    );
    assert!(has_admin_group().await, "the admin group exists");

    // The API's authorizer trusts that pool, for that client.
    let api_id = account.api_id("dev").await.expect("api");
    let authorizers = aws_sdk_apigatewayv2::Client::new(&account.config)
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .expect("authorizers");
    let [authorizer] = authorizers.items() else {
        panic!("one authorizer: {authorizers:?}");
    };
    let jwt = authorizer.jwt_configuration().expect("jwt");
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{id}");
    assert_eq!(jwt.issuer(), Some(issuer.as_str()));
    assert_eq!(jwt.audience(), std::slice::from_ref(&client_id));
    let variables = account
        .function("dev")
        .await
        .configuration()
        .and_then(|configuration| configuration.environment())
        .and_then(|environment| environment.variables())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        variables.get("AUTH_ENABLED").map(String::as_str),
        Some("true")
    );

    // The outputs a teaching app needs.
    let output = account.deployer(&["output", "--env", "dev", "--json"]);
    assert_exit(&output, 0);
    let outputs: Value = serde_json::from_slice(&output.stdout).expect("json outputs");
    assert_eq!(outputs["auth_client_id"], Value::from(client_id.clone()));
    assert_eq!(outputs["auth_user_pool_id"], Value::from(id.clone()));
    assert_eq!(outputs["auth_issuer"], Value::from(issuer));
    let sign_in = outputs["auth_sign_in_url"].as_str().expect("sign-in url");
    assert!(
        sign_in.starts_with(&format!(
            "https://{}.auth.us-east-1.amazoncognito.com/oauth2/authorize?",
            names("dev").sign_in_domain
        )) && sign_in.contains(&format!("client_id={client_id}")),
        "{sign_in}"
    );

    // A rerun changes nothing.
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Drift by hand: a weaker password policy, another callback, no admin
    // group; and a setting the deployer does not manage, which must survive.
    cognito
        .update_user_pool()
        .user_pool_id(&id)
        .deletion_protection(DeletionProtectionType::Active)
        .email_verification_subject("Welcome to the class")
        .policies(
            aws_sdk_cognitoidentityprovider::types::UserPoolPolicyType::builder()
                .password_policy(
                    aws_sdk_cognitoidentityprovider::types::PasswordPolicyType::builder()
                        .minimum_length(6)
                        .build(),
                )
                .build(),
        )
        .set_user_pool_tags(pool.user_pool_tags().cloned())
        .send()
        .await
        .expect("weaken the pool");
    cognito
        .update_user_pool_client()
        .user_pool_id(&id)
        .client_id(&client_id)
        .callback_urls("https://elsewhere.example/cb")
        .send()
        .await
        .expect("move the callback");
    cognito
        .delete_group()
        .user_pool_id(&id)
        .group_name("admin")
        .send()
        .await
        .expect("delete the group");
    let plan = with_pool(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    let shown = text(&plan);
    assert!(shown.contains("~ cognito_user_pool.sign_in"), "{shown}");
    for changed in ["sign_up", "client", "admin_group"] {
        assert!(shown.contains(changed), "{changed}: {shown}");
    }
    assert!(!shown.contains("-/+"), "never replaced: {shown}");
    assert_exit(&apply(), 0);
    let repaired = describe().await;
    assert_eq!(
        repaired
            .policies()
            .and_then(|policies| policies.password_policy())
            .and_then(|policy| policy.minimum_length()),
        Some(12)
    );
    assert_eq!(
        repaired.email_verification_subject(),
        Some("Welcome to the class"),
        "what the deployer does not manage is kept"
    );
    assert!(has_admin_group().await, "the admin group is back");
    let plan = with_pool(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn.zip",
        "--detailed-exitcode",
    ]);
    assert_exit(&plan, 0);

    // Destroy keeps the pool and its account, and an apply adopts it again.
    cognito
        .admin_create_user()
        .user_pool_id(&id)
        .username("ada")
        .send()
        .await
        .expect("an account");
    let destroy = with_pool(&["destroy", "--env", "dev", "--auto-approve"]);
    let shown = text(&destroy);
    assert_exit(&destroy, 0);
    assert!(shown.contains("12 destroyed"), "{shown}");
    assert!(
        shown.contains(&format!(
            "Kept: the Cognito user pool {}",
            names("dev").user_pool
        )) && shown.contains("--delete-user-accounts"),
        "{shown}"
    );
    assert_eq!(pool_id().await.as_deref(), Some(id.as_str()));
    assert_eq!(account.api_id("dev").await, None);
    // Again: nothing else to destroy, and the pool is still kept and named.
    let again = with_pool(&["destroy", "--env", "dev", "--auto-approve"]);
    let shown = text(&again);
    assert_exit(&again, 0);
    assert!(
        shown.contains("Nothing to destroy in dev but what is kept")
            && shown.contains("Kept: the Cognito user pool"),
        "{shown}"
    );
    assert_exit(&apply(), 0);
    assert_eq!(
        pool_id().await.as_deref(),
        Some(id.as_str()),
        "adopted, not duplicated"
    );

    // Told to, destroy deletes it with its accounts, after lifting its protection.
    let destroy = with_pool(&[
        "destroy",
        "--env",
        "dev",
        "--auto-approve",
        "--delete-user-accounts",
    ]);
    let shown = text(&destroy);
    assert_exit(&destroy, 0);
    assert!(shown.contains("13 destroyed"), "{shown}");
    assert!(
        shown.contains("its accounts (1, as Cognito estimates them)"),
        "{shown}"
    );
    assert_eq!(pool_id().await, None);
}

/// Turning `auth_create_user_pool` off takes the authorizer off and leaves the
/// pool, its accounts and its record alone; an environment that never had a
/// pool makes no Cognito call (a deploy role bootstrapped before user pools
/// existed plans and destroys it as before).
#[tokio::test]
async fn turning_the_own_pool_off_leaves_the_pool_and_its_accounts() {
    let account = Account::bootstrapped().await;
    let cognito_calls = |output: &Output| -> Vec<String> {
        logged_calls(output)
            .into_iter()
            .filter(|(service, _)| service == "Cognito Identity Provider")
            .map(|(_, operation)| operation)
            .collect()
    };
    let plain = account.deployer(&["-v", "plan", "--env", "dev", "--artifact", "fn.zip"]);
    assert_exit(&plain, 0);
    assert!(logged_calls(&plain).len() > 5, "the call log works");
    assert_eq!(cognito_calls(&plain), Vec::<String>::new());

    let on = [
        &[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ][..],
        &SIGN_IN_BY_OWN_POOL,
    ]
    .concat();
    assert_exit(&account.deployer(&on), 0);
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&account.config);
    let pools = || async {
        cognito
            .list_user_pools()
            .max_results(60)
            .send()
            .await
            .expect("pools")
            .user_pools()
            .iter()
            .filter_map(|pool| pool.id().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let [id] = &pools().await[..] else {
        panic!("one pool");
    };
    cognito
        .admin_create_user()
        .user_pool_id(id)
        .username("ada")
        .send()
        .await
        .expect("an account");

    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    let shown = text(&plan);
    assert_exit(&plan, 0);
    assert!(
        shown.contains(&format!(
            "user pool {} ({id}) stays",
            names("dev").user_pool
        )),
        "{shown}"
    );
    assert!(
        !shown.contains("- cognito_user_pool"),
        "not deleted: {shown}"
    );
    assert!(shown.contains("The API is open"), "{shown}");
    assert_exit(&account.apply_dev(), 0);
    let api_id = account.api_id("dev").await.expect("api");
    let authorizers = aws_sdk_apigatewayv2::Client::new(&account.config)
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .expect("authorizers");
    assert!(authorizers.items().is_empty(), "{authorizers:?}");
    assert_eq!(&pools().await[..], std::slice::from_ref(id));

    let destroy = account.deployer(&["destroy", "--env", "dev", "--auto-approve"]);
    let shown = text(&destroy);
    assert_exit(&destroy, 0);
    assert!(shown.contains("Kept: the Cognito user pool"), "{shown}");
    assert_eq!(
        &pools().await[..],
        std::slice::from_ref(id),
        "the accounts stay"
    );
    // The state kept the pool's record, so a destroy told to finds it, with
    // the setting still off.
    let destroy = account.deployer(&[
        "destroy",
        "--env",
        "dev",
        "--auto-approve",
        "--delete-user-accounts",
    ]);
    let shown = text(&destroy);
    assert_exit(&destroy, 0);
    assert!(shown.contains("1 destroyed"), "{shown}");
    assert_eq!(pools().await, Vec::<String>::new());
    let state = account.deployer(&["state", "list", "--env", "dev"]);
    assert!(
        !String::from_utf8_lossy(&state.stdout).contains("cognito_user_pool"),
        "{}",
        text(&state)
    );
}
