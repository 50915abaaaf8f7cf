//! `deployer migrate`, `export` and `import` against the emulator: a legacy
//! shared table with three classes (string and decimal counts, a wrong
//! `userCount`, a class that also exists in the target with newer and older
//! users) is migrated one class, then all; the API then lists every class and
//! leaderboard in contract order with exact counts. A rerun writes nothing, a
//! run killed half-way resumes to the same result, 10 % injected throttling
//! changes nothing of the result, and an export imported into another
//! environment lists the same. Ranks and team standings are the target's own:
//! a ranked class exported and imported (over older ranked copies of some of
//! its users) is ranked exactly, and no derived rank item is exported.
//!
//! No bootstrap: the environments' tables are created from the schema, and
//! the state (lock and checkpoint) is local.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    Account, RankedUser, SIGINT, SIGTERM, assert_exit, assert_ranked_exactly, assert_signalled,
    names, text,
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

/// The legacy Terraform's shared table: a name it chose, which `migrate
/// --from` is given, not one the deployer derives.
const LEGACY: &str = "PlaygroundScores";
/// Users per class of the legacy table.
/// (Every user copied is ranked in the target, a few requests each, which the
/// emulator answers in time proportional to the class's partition: hence
/// classes of hundreds, not thousands.)
const CLASSES: [(&str, usize); 3] = [("class-a", 500), ("class-b", 350), ("class-c", 200)];
/// The legacy table's items: each class's users and its metadata.
const ITEMS: usize = 500 + 350 + 200 + 3;

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}
fn n(text: impl ToString) -> AttributeValue {
    AttributeValue::N(text.to_string())
}

type Item = std::collections::HashMap<String, AttributeValue>;

/// A legacy user as the Python API wrote it: counts as numbers, strings or
/// decimals, `lastUpdated` without a zone.
fn legacy_user(table_id: &str, index: usize) -> Item {
    let submissions = (index * 7) % 50;
    let count = match index % 3 {
        0 => n(submissions),
        1 => s(&submissions.to_string()),
        _ => n(format!("{submissions}.0")),
    };
    [
        ("tableId", s(table_id)),
        ("username", s(&format!("student-{index:04}"))),
        ("submissionCount", count),
        ("totalCount", n(submissions * 2)),
        ("lastUpdated", s("2024-05-01T12:00:00.123456")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

fn metadata(table_id: &str, user_count: u64, created: &str) -> Item {
    [
        ("tableId", s(table_id)),
        ("username", s("_metadata")),
        ("displayName", s(&format!("Class {table_id}"))),
        ("createdAt", s(created)),
        ("isArchived", AttributeValue::Bool(false)),
        ("userCount", n(user_count)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

impl Account {
    /// An account with `PlaygroundScores` as the legacy Terraform left it.
    async fn with_legacy_table() -> Self {
        let account = Self::new().await;
        account.create_legacy_table().await;
        account
    }

    /// `PlaygroundScores` as the legacy Terraform made it (keys only, no
    /// index), with the three classes; class-a's `userCount` is wrong.
    async fn create_legacy_table(&self) {
        schema::create_table(&self.dynamodb, LEGACY, &[])
            .expect("request")
            .send()
            .await
            .expect("create the legacy table");
        let mut items = Vec::new();
        for (position, (table_id, users)) in CLASSES.iter().enumerate() {
            let wrong = if *table_id == "class-a" {
                5
            } else {
                *users as u64
            };
            items.push(metadata(
                table_id,
                wrong,
                &format!("2024-0{}-01T09:00:00.000Z", position + 1),
            ));
            items.extend((0..*users).map(|index| legacy_user(table_id, index)));
        }
        self.put_all(LEGACY, items).await;
    }

    async fn put_all(&self, table: &str, items: Vec<Item>) {
        emulator::put_items(&self.dynamodb, table, items).await;
    }

    /// An environment's table, created from the schema as `apply` creates it.
    async fn environment_table(&self, environment: &str) -> String {
        let table = names(environment).table;
        let indexes: Vec<_> = schema::TABLE_SCHEMA
            .global_secondary_indexes
            .iter()
            .collect();
        schema::create_table(&self.dynamodb, &table, &indexes)
            .expect("request")
            .send()
            .await
            .expect("create the environment's table");
        table
    }

    fn migrate(&self, environment: &str, extra: &[&str]) -> Output {
        let mut args = vec!["migrate", "--env", environment, "--from", LEGACY];
        args.extend_from_slice(extra);
        self.deployer(&args)
    }

    /// Every item of a table, by key.
    async fn items(&self, table: &str) -> BTreeMap<(String, String), Item> {
        let mut items = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            for item in page.items() {
                let key = |name: &str| item[name].as_s().expect("string key").clone();
                items.insert((key("tableId"), key("username")), item.clone());
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
    }

    /// Every item of a table that is a class's data (its derived rank
    /// entries, buckets and teams left out: which shard of a bucket counted
    /// a user is random), by key. Users keep their rank attributes.
    async fn class_items(&self, table: &str) -> BTreeMap<(String, String), Item> {
        let mut items = self.items(table).await;
        items.retain(|(_, username), _| !schema::ranking::is_derived(username));
        items
    }

    /// The API served over loopback on `table`, as a client sees it.
    async fn api(&self, table: &str) -> Api {
        let store = playground_api::store::Store::new(
            self.dynamodb.clone(),
            table,
            playground_api::store::NewUserWrite::Transaction,
        );
        let router = playground_api::api::router(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Api {
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
        }
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "GET {path}");
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
    }

    /// Every page of a listing, in order.
    async fn all(&self, path: &str, field: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut last_key: Option<String> = None;
        loop {
            let separator = if path.contains('?') { '&' } else { '?' };
            let page_path = match &last_key {
                Some(key) => format!("{path}{separator}limit=100&lastKey={key}"),
                None => format!("{path}{separator}limit=100"),
            };
            let page = self.get(&page_path).await;
            all.extend(page[field].as_array().expect("a list").iter().cloned());
            match page["lastKey"].as_str() {
                Some(key) => last_key = Some(key.to_owned()),
                None => return all,
            }
        }
    }

    /// What a client sees of every table: the listing, and each table with its
    /// leaderboard.
    async fn listings(&self) -> (Vec<Value>, BTreeMap<String, (Value, Vec<Value>)>) {
        let tables = self.all("/tables", "tables").await;
        let mut each = BTreeMap::new();
        for table in &tables {
            let id = table["tableId"].as_str().expect("id").to_owned();
            let one = self.get(&format!("/tables/{id}")).await;
            let users = self.all(&format!("/tables/{id}/users"), "users").await;
            each.insert(id, (one, users));
        }
        (tables, each)
    }
}

fn summary(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("a JSON summary ({error}): {}", text(output)))
}

/// The leaderboard order the contract promises: submissionCount descending,
/// then username.
fn in_contract_order(users: &[Value]) -> bool {
    users.windows(2).all(|pair| {
        let key = |user: &Value| {
            (
                std::cmp::Reverse(user["submissionCount"].as_u64().expect("count")),
                user["username"].as_str().expect("name").to_owned(),
            )
        };
        key(&pair[0]) <= key(&pair[1])
    })
}

#[tokio::test]
async fn one_class_then_all_keeping_newer_items_recounting_and_verifying() {
    let account = Account::with_legacy_table().await;
    let table = account.environment_table("dev").await;
    // class-b already lives in dev: 10 of its users were written there since
    // (newer), 10 long ago (older), and 5 exist only there.
    let mut table_b = metadata("class-b", 25, "2024-02-01T09:00:00.000Z");
    table_b.insert("tablesPartition".into(), s("TABLES"));
    let mut existing = vec![table_b];
    for index in 0..20 {
        let (time, count) = if index < 10 {
            ("2030-01-01T00:00:00.000Z", 999)
        } else {
            ("2000-01-01T00:00:00.000Z", 1)
        };
        let mut user = legacy_user("class-b", index);
        user.insert("submissionCount".into(), n(count));
        user.insert("lastUpdated".into(), s(time));
        user.insert(
            "leaderboardKey".into(),
            s(&schema::leaderboard_key(
                count,
                &format!("student-{index:04}"),
            )),
        );
        existing.push(user);
    }
    for index in 0..5 {
        let username = format!("only-in-dev-{index}");
        existing.push(
            [
                ("tableId", s("class-b")),
                ("username", s(&username)),
                ("submissionCount", n(3)),
                ("totalCount", n(3)),
                ("lastUpdated", s("2030-01-01T00:00:00.000Z")),
                ("leaderboardKey", s(&schema::leaderboard_key(3, &username))),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
        );
    }
    account.put_all(&table, existing).await;

    // One class: copied, its wrong userCount recounted, verified.
    let one = account.migrate("dev", &["--tables", "class-a", "--json"]);
    assert_exit(&one, 0);
    let one = summary(&one);
    assert_eq!(one["counts"]["copied"], 501, "{one}");
    assert_eq!(one["ranked"], 500, "every user copied is ranked: {one}");
    assert_eq!(one["counts"]["refused"], 0);
    assert_eq!(one["recounted"], 1, "class-a's userCount was 5: {one}");
    assert_eq!(one["tables"][0]["table_id"], "class-a");
    assert_eq!(one["tables"][0]["user_count"], 500);
    assert_eq!(one["tables"][0]["differences"], serde_json::json!([]));
    assert_eq!(
        one["tables"][0]["source_checksum"],
        one["tables"][0]["target_checksum"]
    );

    // A dry run of all counts what would happen and writes nothing.
    emulator::clear_served_requests(account.emulator.endpoint());
    let dry = account.migrate("dev", &["--all", "--dry-run", "--json"]);
    assert_exit(&dry, 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
    let dry = summary(&dry);
    // class-a as migrated and class-b's table (the same but for userCount).
    assert_eq!(dry["counts"]["unchanged"], 501 + 1, "{dry}");
    assert_eq!(dry["counts"]["kept_newer"], 10, "{dry}");
    assert_eq!(dry["counts"]["replaced"], 10, "{dry}");
    assert_eq!(dry["counts"]["copied"], 330 + 201, "{dry}");

    // All of them.
    let all = account.migrate("dev", &["--all", "--json", "--parallel", "3"]);
    assert_exit(&all, 0);
    let all = summary(&all);
    assert_eq!(all["counts"]["read"], 1 + 500 + 1 + 350 + 1 + 200, "{all}");
    assert_eq!(all["counts"]["kept_newer"], 10);
    assert_eq!(all["counts"]["replaced"], 10);
    assert_eq!(all["counts"]["copied"], 330 + 201);
    assert_eq!(all["counts"]["unchanged"], 502);
    // The copied users, and class-b's 5 own users (written there before
    // ranks existed); the replaced ones, whose older copies were unranked
    // first; the newer ones kept were never ranked here either.
    assert_eq!(all["ranked"], 330 + 200 + 5 + 10 + 10, "{all}");
    assert_eq!(all["recounted"], 1, "class-b's userCount was 25: {all}");
    let checks = all["tables"].as_array().expect("tables");
    assert_eq!(checks.len(), 3, "{all}");
    for check in checks {
        assert_eq!(check["differences"], serde_json::json!([]), "{check}");
    }
    let b = checks
        .iter()
        .find(|check| check["table_id"] == "class-b")
        .expect("class-b");
    assert_eq!(b["newer_in_target"], 10);
    assert_eq!(b["target_users"], 355);
    assert_eq!(b["user_count"], 355);

    // Through the API: every class, newest first, exact counts, leaderboards
    // in contract order; the newer users kept, the older ones replaced.
    let api = account.api(&table).await;
    let (tables, each) = api.listings().await;
    let ids: Vec<&str> = tables
        .iter()
        .filter_map(|t| t["tableId"].as_str())
        .collect();
    assert_eq!(ids, ["class-c", "class-b", "class-a"]);
    for (id, users) in [("class-a", 500), ("class-b", 355), ("class-c", 200)] {
        let (one, leaderboard) = &each[id];
        assert_eq!(one["userCount"], users, "{id}");
        assert_eq!(leaderboard.len(), users, "{id}");
        assert!(in_contract_order(leaderboard), "{id} is out of order");
    }
    let user = api.get("/tables/class-b/users/student-0003").await;
    assert_eq!(user["submissionCount"], 999, "newer kept: {user}");
    let user = api.get("/tables/class-b/users/student-0013").await;
    assert_eq!(
        user["submissionCount"],
        (13 * 7) % 50,
        "older replaced: {user}"
    );
    let user = api.get("/tables/class-a/users/student-0001").await;
    assert_eq!(
        user["submissionCount"], 7,
        "a string count is a number now: {user}"
    );

    // A rerun writes nothing.
    emulator::clear_served_requests(account.emulator.endpoint());
    let again = account.migrate("dev", &["--all", "--json"]);
    assert_exit(&again, 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
    assert_eq!(
        summary(&again)["counts"]["unchanged"],
        1 + 500 + 1 + 350 + 1 + 200 - 10
    );

    // The text summary names every table and says it verified.
    let shown = account.migrate("dev", &["--tables", "class-c"]);
    assert_exit(&shown, 0);
    assert!(
        text(&shown).contains("class-c | 200 | 200 | 0 | 200"),
        "{}",
        text(&shown)
    );
    assert!(
        text(&shown).contains("Verified: every table matches."),
        "{}",
        text(&shown)
    );
}

/// The lock a killed run left, from the refusal's `force-unlock` command.
fn force_unlock(account: &Account, environment: &str, refused: &Output) {
    let shown = text(refused);
    let command = shown
        .lines()
        .find_map(|line| line.split("deployer force-unlock").nth(1))
        .unwrap_or_else(|| panic!("no force-unlock command in: {shown}"));
    let id = command
        .split_whitespace()
        .nth(2)
        .map(|id| id.trim_matches(|c: char| c == '`' || c == '.' || c == ','))
        .unwrap_or_else(|| panic!("no lock id in: {command}"));
    assert_exit(
        &account.deployer(&["force-unlock", "--env", environment, id]),
        0,
    );
}

/// Start a migration of `environment` slowed by the emulator, and return it
/// once its checkpoint shows 300 items read. (The caller waits for it.)
fn start_slow_migration(account: &Account, environment: &str) -> std::process::Child {
    start_slow_migration_past(account, environment, 300)
}

/// Items read so far by `environment`'s migration, from its checkpoint.
fn items_read(account: &Account, environment: &str) -> u64 {
    let checkpoint = account.dir.path().join(format!(
        ".deployer/{environment}.d/migrate-from-{LEGACY}.json"
    ));
    let progress = std::fs::read_to_string(&checkpoint).unwrap_or_default();
    serde_json::from_str::<Value>(&progress)
        .ok()
        .and_then(|checkpoint| checkpoint["counts"]["read"].as_u64())
        .unwrap_or(0)
}

/// [`start_slow_migration`], returned once its checkpoint shows `past`
/// items read.
#[allow(clippy::zombie_processes)]
fn start_slow_migration_past(
    account: &Account,
    environment: &str,
    past: u64,
) -> std::process::Child {
    emulator::configure_faults(
        account.emulator.endpoint(),
        &serde_json::json!({"latency_ms": {"dynamodb": 3}}),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(account.dir.path())
        .envs(emulator::aws_env(account.emulator.endpoint()))
        .args([
            "migrate",
            "--env",
            environment,
            "--from",
            LEGACY,
            "--all",
            "--parallel",
            "2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the migration");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if items_read(account, environment) >= past {
            return child;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let stopped = child.wait_with_output().expect("wait");
            panic!("no progress in the checkpoint: {}", text(&stopped));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn ctrl_c_or_sigterm_stops_a_migration_releasing_its_lock_and_the_rerun_resumes() {
    let account = Account::with_legacy_table().await;
    let table = account.environment_table("stage").await;
    let child = start_slow_migration(&account, "stage");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let stopped = child.wait_with_output().expect("wait");
    emulator::clear_faults(account.emulator.endpoint());
    // Ended by the signal, so a calling shell script stops too.
    assert_signalled(&stopped, SIGINT);
    assert!(text(&stopped).contains("interrupted"), "{}", text(&stopped));
    assert!(
        account.class_items(&table).await.len() < ITEMS,
        "stopped before the end"
    );
    // SIGTERM, as GitHub sends a cancelled run 7.5 s before SIGKILL: the
    // same clean stop, within 5 s, and the lock released.
    let past = items_read(&account, "stage") + 200;
    assert!(past < ITEMS as u64, "room for a second stop");
    let child = start_slow_migration_past(&account, "stage", past);
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let stopped = child.wait_with_output().expect("wait");
    let took = signalled.elapsed();
    emulator::clear_faults(account.emulator.endpoint());
    assert_signalled(&stopped, SIGTERM);
    assert!(text(&stopped).contains("interrupted"), "{}", text(&stopped));
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    let status = account.deployer(&["lock", "status", "--env", "stage", "--json"]);
    assert_exit(&status, 0);
    let status: Value = serde_json::from_slice(&status.stdout).expect("lock status --json");
    assert_eq!(status["locked"], false, "the lock is released: {status}");
    let resumed = account.migrate("stage", &["--all", "--parallel", "2", "--json"]);
    assert_exit(&resumed, 0);
    assert_eq!(summary(&resumed)["resumed"], true);
    assert_eq!(account.class_items(&table).await.len(), ITEMS);
}

#[tokio::test]
async fn a_migration_killed_half_way_resumes_to_the_same_result() {
    let account = Account::with_legacy_table().await;
    let killed = account.environment_table("stage").await;
    let whole = account.environment_table("prod").await;
    assert_exit(&account.migrate("prod", &["--all", "--parallel", "2"]), 0);

    // Slow enough to be stopped in the middle, then killed with SIGKILL once
    // its checkpoint shows progress.
    let mut child = start_slow_migration(&account, "stage");
    let checkpoint = account
        .dir
        .path()
        .join(format!(".deployer/stage.d/migrate-from-{LEGACY}.json"));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let stderr = child.stderr.take().map(BufReader::new);
    let printed: Vec<String> = stderr
        .map(|r| r.lines().map_while(Result::ok).collect())
        .unwrap_or_default();
    emulator::clear_faults(account.emulator.endpoint());
    let written_before = account.class_items(&killed).await.len();
    assert!(
        written_before > 0 && written_before < ITEMS,
        "stopped half-way: {written_before} items ({printed:?})"
    );

    // The killed run's lock is still held: the rerun says how to remove it.
    let refused = account.migrate("stage", &["--all", "--parallel", "2"]);
    assert_exit(&refused, 1);
    force_unlock(&account, "stage", &refused);
    let resumed = account.migrate("stage", &["--all", "--parallel", "2", "--json"]);
    assert_exit(&resumed, 0);
    let resumed = summary(&resumed);
    assert_eq!(resumed["resumed"], true, "{resumed}");
    assert!(
        !checkpoint.exists(),
        "a finished run removes its checkpoint"
    );

    let strip = |items: BTreeMap<(String, String), Item>| -> Vec<((String, String), Item)> {
        items.into_iter().collect()
    };
    assert_eq!(
        strip(account.class_items(&killed).await),
        strip(account.class_items(&whole).await)
    );

    // Resuming with other options is refused, saying how to go on.
    std::fs::create_dir_all(checkpoint.parent().expect("dir")).expect("dir");
    std::fs::write(
        &checkpoint,
        serde_json::json!({"format_version": 1, "source": format!("DynamoDB table {LEGACY}"), "target": killed,
            "lanes": {"segment 1/3": {"lane": null, "after": null, "done": false}}, "touched": [], "counts": {
            "read": 0, "copied": 0, "replaced": 0, "kept_newer": 0, "unchanged": 0, "counters_skipped": 0, "refused": 0},
            "refused": []})
        .to_string(),
    )
    .expect("write");
    let other = account.migrate("stage", &["--all", "--parallel", "2"]);
    assert_exit(&other, 1);
    assert!(text(&other).contains("--restart"), "{}", text(&other));
    assert_exit(
        &account.migrate("stage", &["--all", "--parallel", "2", "--restart"]),
        0,
    );
}

#[tokio::test]
async fn under_ten_percent_throttling_a_migration_still_finishes_exactly() {
    let account = Account::with_legacy_table().await;
    let throttled = account.environment_table("qa").await;
    let calm = account.environment_table("calm").await;
    assert_exit(&account.migrate("calm", &["--all"]), 0);
    emulator::configure_faults(
        account.emulator.endpoint(),
        &serde_json::json!({"seed": 11, "rules": [
            {"service": "dynamodb", "probability": 0.1, "kinds": ["throttle"]}
        ]}),
    );
    let output = account.migrate("qa", &["--all", "--json", "--max-rcu", "10000"]);
    let injected = emulator::injected_faults(account.emulator.endpoint());
    emulator::clear_faults(account.emulator.endpoint());
    assert_exit(&output, 0);
    assert!(
        injected.values().sum::<u64>() > 50,
        "throttling was injected: {injected:?}"
    );
    let throttled_items = account.class_items(&throttled).await;
    assert_eq!(throttled_items.len(), ITEMS);
    assert_eq!(throttled_items, account.class_items(&calm).await);
}

#[tokio::test]
async fn an_export_imported_into_another_environment_lists_the_same() {
    let account = Account::with_legacy_table().await;
    let dev = account.environment_table("dev").await;
    let copy = account.environment_table("copy").await;
    assert_exit(&account.migrate("dev", &["--all"]), 0);

    let exported = account.deployer(&["export", "--env", "dev"]);
    assert_exit(&exported, 0);
    let lines = String::from_utf8(exported.stdout).expect("UTF-8");
    assert_eq!(
        lines.lines().count(),
        ITEMS,
        "3 tables and their users, no counters, nothing derived"
    );
    let first: Value = serde_json::from_str(lines.lines().next().expect("a line")).expect("JSON");
    assert_eq!(
        first["username"], "_metadata",
        "a table starts with its metadata"
    );
    let file = account.dir.path().join("dev.jsonl");
    std::fs::write(&file, &lines).expect("write the export");

    let imported = account.deployer(&["import", "--env", "copy", "dev.jsonl", "--json"]);
    assert_exit(&imported, 0);
    let imported = summary(&imported);
    assert_eq!(imported["counts"]["copied"], ITEMS, "{imported}");
    for check in imported["tables"].as_array().expect("tables") {
        assert_eq!(check["differences"], serde_json::json!([]), "{check}");
    }
    let from = account.api(&dev).await.listings().await;
    let to = account.api(&copy).await.listings().await;
    assert_eq!(from, to);
    // One class only, into a third environment.
    let one = account.deployer(&["export", "--env", "dev", "--tables", "class-c"]);
    assert_exit(&one, 0);
    assert_eq!(String::from_utf8_lossy(&one.stdout).lines().count(), 201);
    emulator::clear_served_requests(account.emulator.endpoint());
    let again = account.deployer(&["import", "--env", "copy", "dev.jsonl"]);
    assert_exit(&again, 0);
    assert_eq!(
        account.mutating_requests(),
        Vec::<String>::new(),
        "a rerun writes nothing"
    );
}

/// Class `class-m` of the moral-compass apps: 300 users (over a rank
/// bucket's 256, so buckets split), most with a score and a team.
fn moral_compass_class() -> Vec<RankedUser> {
    (0..300)
        .map(|index: usize| {
            let score = if index.is_multiple_of(5) {
                0.0
            } else {
                (index % 7) as f64 / 10.0 + 0.05
            };
            let team = (!index.is_multiple_of(4)).then(|| ["red", "blue", "green"][index % 3]);
            RankedUser::new(
                "class-m",
                &format!("pupil-{index:03}"),
                score,
                (index % 11) as u64,
                team,
            )
        })
        .collect()
}

fn item_of(user: &RankedUser, time: &str) -> Item {
    let mut item: Item = [
        ("tableId", s(&user.table_id)),
        ("username", s(&user.username)),
        ("submissionCount", n(user.submissions)),
        ("totalCount", n(user.submissions)),
        ("lastUpdated", s(time)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    if user.score != 0.0 {
        item.insert(
            "moralCompassScore".into(),
            n(schema::ranking::score_text(user.score)),
        );
    }
    if let Some(team) = &user.team {
        item.insert("teamName".into(), s(team));
    }
    item
}

/// A ranked class moves with its users, never with its ranks: migrated, its
/// users are ranked in the target; exported, the file holds no rank entry,
/// bucket or team and no user's rank attributes; imported where older,
/// ranked copies of some of its users (on other scores and teams) are
/// replaced, the old copies' counts are taken out first, so every rank and
/// team total is exact; and a rerun writes nothing.
#[tokio::test]
async fn a_ranked_class_moves_without_its_ranks_and_the_target_ranks_it_exactly() {
    let account = Account::with_legacy_table().await;
    let dev = account.environment_table("dev").await;
    let copy = account.environment_table("copy").await;
    let class = moral_compass_class();
    let mut legacy = vec![metadata("class-m", 300, "2024-09-01T09:00:00.000Z")];
    legacy.extend(
        class
            .iter()
            .map(|user| item_of(user, "2024-09-02T10:00:00.000Z")),
    );
    account.put_all(LEGACY, legacy).await;

    // Migrated: copied, then ranked in dev.
    let migrated = account.migrate("dev", &["--tables", "class-m", "--json"]);
    assert_exit(&migrated, 0);
    let migrated = summary(&migrated);
    assert_eq!(migrated["counts"]["copied"], 301, "{migrated}");
    assert_eq!(migrated["ranked"], 300, "{migrated}");
    assert_ranked_exactly(&account.dynamodb, &dev, &class).await;

    // Exported: the users and their table, nothing derived.
    let exported = account.deployer(&["export", "--env", "dev", "--tables", "class-m"]);
    assert_exit(&exported, 0);
    let lines = String::from_utf8(exported.stdout).expect("UTF-8");
    assert_eq!(lines.lines().count(), 301, "the table and its users");
    for line in lines.lines() {
        let item: Value = serde_json::from_str(line).expect("JSON");
        let username = item["username"].as_str().expect("username");
        assert!(!schema::ranking::is_derived(username), "{line}");
        assert!(
            item.get("rankKey").is_none() && item.get("rankTeam").is_none(),
            "{line}"
        );
    }
    assert!(
        account
            .items(&dev)
            .await
            .keys()
            .any(|(_, username)| schema::ranking::is_derived(username)),
        "dev holds derived items, which were left out"
    );
    std::fs::write(account.dir.path().join("class-m.jsonl"), &lines).expect("write");

    // The target already holds 30 of these users, older, on other scores
    // and teams, ranked there (and counted in teams that then lose them).
    let mut older = vec![{
        let mut table = metadata("class-m", 30, "2024-09-01T09:00:00.000Z");
        table.insert("tablesPartition".into(), s("TABLES"));
        table
    }];
    let stale: Vec<RankedUser> = class
        .iter()
        .take(30)
        .map(|user| RankedUser {
            score: 0.9,
            submissions: 1,
            team: Some("purple".to_owned()),
            ..user.clone()
        })
        .collect();
    for user in &stale {
        let mut item = item_of(user, "2024-01-01T00:00:00.000Z");
        item.insert(
            "leaderboardKey".into(),
            s(&schema::leaderboard_key(user.submissions, &user.username)),
        );
        older.push(item);
    }
    account.put_all(&copy, older).await;
    for user in &stale {
        let item =
            account.items(&copy).await[&(user.table_id.clone(), user.username.clone())].clone();
        assert!(
            schema::ranking::rank_unranked_user(&account.dynamodb, &copy, &item, 0)
                .await
                .expect("ranked")
        );
    }
    assert_ranked_exactly(&account.dynamodb, &copy, &stale).await;

    let imported = account.deployer(&["import", "--env", "copy", "class-m.jsonl", "--json"]);
    assert_exit(&imported, 0);
    let imported = summary(&imported);
    assert_eq!(imported["counts"]["replaced"], 30, "{imported}");
    assert_eq!(imported["counts"]["copied"], 270, "{imported}");
    assert_eq!(imported["ranked"], 300, "{imported}");
    assert_eq!(
        imported["tables"][0]["differences"],
        serde_json::json!([]),
        "{imported}"
    );
    // Exact: no count of the replaced copies is left (purple is gone).
    assert_ranked_exactly(&account.dynamodb, &copy, &class).await;

    // A rerun decides every item unchanged and writes nothing.
    emulator::clear_served_requests(account.emulator.endpoint());
    let again = account.deployer(&["import", "--env", "copy", "class-m.jsonl", "--json"]);
    assert_exit(&again, 0);
    assert_eq!(summary(&again)["counts"]["unchanged"], 301);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
}

#[tokio::test]
async fn an_item_that_cannot_be_taken_is_refused_named_and_fails_the_run() {
    let account = Account::with_legacy_table().await;
    account.environment_table("dev").await;
    let mut bad = legacy_user("class-a", 5000);
    bad.insert("submissionCount".into(), n("2.5"));
    account.put_all(LEGACY, vec![bad]).await;
    let output = account.migrate("dev", &["--tables", "class-a"]);
    assert_exit(&output, 1);
    let shown = text(&output);
    assert!(shown.contains("1 refused"), "{shown}");
    assert!(
        shown.contains("refused class-a/student-5000: submissionCount = \"2.5\" is not a non-negative whole number"),
        "{shown}"
    );
    assert!(shown.contains("Differences found"), "{shown}");

    let missing = account.migrate("nowhere", &["--all"]);
    assert_exit(&missing, 1);
    assert!(
        text(&missing).contains(&format!(
            "the table {} does not exist: `deployer apply --env nowhere` creates it first",
            names("nowhere").table
        )),
        "{}",
        text(&missing)
    );
    let unknown = account.migrate("dev", &["--tables", "class-x"]);
    assert_exit(&unknown, 1);
    assert!(
        text(&unknown).contains(&format!(
            "DynamoDB table {LEGACY} has no items of this table"
        )),
        "{}",
        text(&unknown)
    );
    let neither = account.deployer(&["migrate", "--env", "dev", "--from", LEGACY]);
    assert_exit(&neither, 2);

    // A file that holds one key twice cannot say which line is the item.
    std::fs::write(
        account.dir.path().join("twice.jsonl"),
        concat!(
            r#"{"tableId":"class-z","username":"ana","submissionCount":1}"#,
            "\n",
            r#"{"tableId":"class-z","username":"bo","submissionCount":1}"#,
            "\n",
            r#"{"tableId":"class-z","username":"ana","submissionCount":3}"#,
            "\n"
        ),
    )
    .expect("write the file");
    let twice = account.deployer(&["import", "--env", "dev", "twice.jsonl"]);
    assert_exit(&twice, 1);
    assert!(
        text(&twice).contains("refused line 3: repeats the key of line 1"),
        "{}",
        text(&twice)
    );
}

/// The API may write a user between the read of a page and the write of its
/// winners: the conditional write fails, the item is read and decided again,
/// and the newer one is kept, never overwritten blindly.
#[tokio::test]
async fn a_write_that_lost_a_race_with_the_api_keeps_the_newer_item() {
    use deployer::data::shape::{Decision, shape};
    use deployer::data::target::Target;
    let account = Account::with_legacy_table().await;
    let table = account.environment_table("dev").await;
    let target = Target {
        client: account.dynamodb.clone(),
        table: table.clone(),
    };
    let user = |time: &str, count: u64| {
        let mut user = legacy_user("class-a", 1);
        user.insert("submissionCount".into(), n(count));
        user.insert("lastUpdated".into(), s(time));
        shape(&user).expect("shaped")
    };
    let read_then = user("2000-01-01T00:00:00.000Z", 1);
    let written_since = user("2030-01-01T00:00:00.000Z", 77);
    let source = user("2024-05-01T12:00:00.000Z", 7);
    account.put_all(&table, vec![written_since.clone()]).await;
    let key = ("class-a".to_owned(), "student-0001".to_owned());

    // Decided on a stale read (the target's was older): replaced, it would lose 77.
    let held = target
        .write(&source, Decision::Replace, Some(read_then))
        .await
        .expect("write");
    assert_eq!(held, Decision::KeepNewer);
    assert_eq!(account.items(&table).await[&key], written_since);
    // Decided on a read that found nothing: the user joined since.
    let held = target
        .write(&source, Decision::Copy, None)
        .await
        .expect("write");
    assert_eq!(held, Decision::KeepNewer);
    assert_eq!(account.items(&table).await[&key], written_since);
    // And when the target's really is older, it is replaced.
    let older = user("2001-01-01T00:00:00.000Z", 2);
    account.put_all(&table, vec![older.clone()]).await;
    let held = target
        .write(&source, Decision::Replace, Some(older))
        .await
        .expect("write");
    assert_eq!(held, Decision::Replace);
    assert_eq!(account.items(&table).await[&key], source);
}

/// Seeding a preview (`preview.yml`'s `deployer import --env pr-<number>
/// FILE` after apply): an export of a class of dev imported into `pr-7`, every call of
/// which the preview role's policy, as bootstrap wrote it into IAM, allows
/// (actions only: moto enforces no IAM; the resources are evaluated in
/// `stacks::preview::tests`).
#[tokio::test]
async fn an_export_seeds_a_preview_with_only_calls_the_preview_role_may_make() {
    let account = Account::with_legacy_table().await;
    account.environment_table("dev").await;
    account.environment_table("pr-7").await;
    assert_exit(&account.migrate("dev", &["--tables", "class-c"]), 0);
    let exported = account.deployer(&["export", "--env", "dev", "--tables", "class-c"]);
    assert_exit(&exported, 0);
    std::fs::write(account.dir.path().join("seed.jsonl"), &exported.stdout).expect("write");
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);

    let imported = account.deployer(&["-v", "import", "--env", "pr-7", "seed.jsonl", "--json"]);
    assert_exit(&imported, 0);
    assert_eq!(
        summary(&imported)["counts"]["copied"],
        201,
        "class-c and its metadata"
    );
    let calls = crate::environment::logged_calls(&imported);
    assert!(
        calls
            .iter()
            .any(|(_, operation)| operation == "TransactWriteItems"),
        "the import's writes are in the call log: {calls:?}"
    );
    let policy = crate::support::managed_policy(
        &account.config,
        &crate::support::settings().preview_policy_name,
    )
    .await;
    crate::environment::permissions::assert_policy_allows(&policy, &calls, "the preview policy");
}
