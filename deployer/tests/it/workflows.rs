//! The GitHub Actions workflows (`.github/workflows`) run only on GitHub, so
//! what they promise is checked here on the parsed YAML: triggers, the deploy
//! matrix and its environments, least permissions, credentials through OIDC and
//! never access keys, actions pinned to commits, and the command lines, each
//! `deployer` command being parsed by the deployer's own clap definition.
//! Every check names the workflow and the property it found broken; the tests
//! at the end break each property on purpose to show that its check notices.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches};
use deployer::cli::{self, Cli};
use serde_json::Value;

use crate::fake_gh::{FakeGh, REPOSITORY};
use yaml_rust2::{Yaml, YamlLoader};

const WORKFLOWS: [&str; 7] = [
    "bootstrap.yml",
    "ci.yml",
    "deploy.yml",
    "destroy.yml",
    "drift.yml",
    "preview.yml",
    "pull-request.yml",
];
/// `(scope, level)` pairs of a job's `permissions:`.
type Grants = &'static [(&'static str, &'static str)];
/// Jobs granted something besides `contents: read` (and `id-token: write` to
/// assume a role): exactly these grants, and no AWS credentials.
const GITHUB_WRITERS: [(&str, &str, Grants); 3] = [
    ("pull-request.yml", "comment", &[("pull-requests", "write")]),
    ("drift.yml", "issue", &[("issues", "write")]),
    ("preview.yml", "comment", &[("pull-requests", "write")]),
];
/// The condition that keeps AWS credentials and write tokens from forks.
const NOT_A_FORK: &str = "github.event.pull_request.head.repo.full_name == github.repository";
const ENVIRONMENTS: [&str; 3] = ["dev", "stage", "prod"];
const AWS_CREDENTIALS: &str = "aws-actions/configure-aws-credentials";
const DEPLOY_ROLE: &str = "${{ secrets.AWS_ROLE_TO_ASSUME }}";
const BOOTSTRAP_ROLE: &str = "${{ secrets.AWS_BOOTSTRAP_ROLE_TO_ASSUME }}";
/// The read-only role of jobs in the GitHub environment `plan`.
const PLAN_ROLE: &str = "${{ secrets.AWS_PLAN_ROLE_TO_ASSUME }}";
/// The role of every job of preview.yml: `pr-*` resources only.
const PREVIEW_ROLE: &str = "${{ secrets.AWS_PREVIEW_ROLE_TO_ASSUME }}";
/// The marker of the one comment preview.yml keeps on a pull request.
const PREVIEW_MARKER: &str = "<!-- deployer-preview -->";
const REGION: &str = "${{ vars.AWS_REGION || 'us-east-1' }}";
const LOAD_SCENARIOS: [&str; 3] = ["single-table", "multi-table", "mixed"];
/// The scenarios that write, in the order they run after the read-only smoke test.
const WRITE_SCENARIOS: [&str; 4] = ["smoke", "single-table", "multi-table", "mixed"];
/// Where the scenarios that write run: the environments whose settings allow
/// deleting tables, so that they delete what they created. Never prod.
const WRITE_ENVIRONMENTS: [&str; 2] = ["dev", "stage"];
const BOOTSTRAP_OUTPUTS: [&str; 4] = [
    "state_bucket",
    "lock_table",
    "deploy_role_arn",
    "plan_role_arn",
];

fn workflows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows")
}

/// One workflow file: its name, its text and its YAML.
pub(crate) struct Workflow {
    file: String,
    text: String,
    yaml: Yaml,
}

impl Workflow {
    pub(crate) fn load(file: &str) -> Self {
        let path = workflows_dir().join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
        Self::parse(file, text)
    }

    fn parse(file: &str, text: String) -> Self {
        let mut documents = YamlLoader::load_from_str(&text)
            .unwrap_or_else(|error| panic!("{file}: not valid YAML: {error}"));
        assert_eq!(documents.len(), 1, "{file}: expected one YAML document");
        let yaml = documents.remove(0);
        Self {
            file: file.to_owned(),
            text,
            yaml,
        }
    }

    /// The workflow with its first `from` replaced by `to`: a broken copy.
    fn mutated(file: &str, from: &str, to: &str) -> Self {
        let original = Self::load(file);
        assert!(original.text.contains(from), "{file} has no {from:?}");
        Self::parse(file, original.text.replacen(from, to, 1))
    }

    fn fail(&self, property: &str, detail: impl Display) -> ! {
        panic!("{}: {property}: {detail}", self.file)
    }

    fn ensure(&self, holds: bool, property: &str, detail: impl Display) {
        if !holds {
            self.fail(property, detail)
        }
    }

    /// The node at a dotted path below `from`; a missing one is a failure.
    fn node<'a>(&self, from: &'a Yaml, path: &str) -> &'a Yaml {
        path.split('.').fold(from, |node, key| {
            let next = &node[key];
            if next.is_badvalue() {
                self.fail("structure", format_args!("`{path}` is missing"))
            }
            next
        })
    }

    fn at(&self, path: &str) -> &Yaml {
        self.node(&self.yaml, path)
    }

    fn text_at<'a>(&self, from: &'a Yaml, path: &str) -> &'a str {
        self.node(from, path)
            .as_str()
            .unwrap_or_else(|| self.fail("structure", format_args!("`{path}` is not a string")))
    }

    fn list_at(&self, from: &Yaml, path: &str) -> Vec<String> {
        let node = self.node(from, path);
        node.as_vec()
            .and_then(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| {
                self.fail(
                    "structure",
                    format_args!("`{path}` is not a list of strings"),
                )
            })
    }

    fn keys(&self, from: &Yaml, path: &str) -> Vec<String> {
        let node = self.node(from, path);
        node.as_hash()
            .unwrap_or_else(|| self.fail("structure", format_args!("`{path}` is not a mapping")))
            .keys()
            .filter_map(|key| key.as_str().map(str::to_owned))
            .collect()
    }

    fn jobs(&self) -> Vec<(String, &Yaml)> {
        self.keys(&self.yaml, "jobs")
            .into_iter()
            .map(|id| {
                let job = &self.yaml["jobs"][id.as_str()];
                (id, job)
            })
            .collect()
    }

    fn job(&self, id: &str) -> &Yaml {
        self.at(&format!("jobs.{id}"))
    }

    fn steps(&self, job: &str) -> &[Yaml] {
        self.node(self.job(job), "steps")
            .as_vec()
            .map(Vec::as_slice)
            .unwrap_or_else(|| self.fail("structure", format_args!("job `{job}` has no steps")))
    }

    /// The first step of `job` using `action`, with its position.
    fn step_using(&self, job: &str, action: &str) -> (usize, &Yaml) {
        self.steps(job)
            .iter()
            .enumerate()
            .find(|(_, step)| action_of(step) == Some(action))
            .unwrap_or_else(|| {
                self.fail(
                    "steps",
                    format_args!("no step of job `{job}` uses {action}"),
                )
            })
    }

    /// The `run:` script of the step of `job` whose name starts with `name`,
    /// and the names its environment defines (the workflow's, the job's and
    /// the step's `env:`), as a step runs it.
    fn step_script(&self, job: &str, name: &str) -> (String, Vec<String>) {
        let step = self
            .steps(job)
            .iter()
            .find(|step| step["name"].as_str().is_some_and(|it| it.starts_with(name)))
            .unwrap_or_else(|| {
                self.fail(
                    "steps",
                    format_args!("no step of job `{job}` is named {name:?}"),
                )
            });
        let script = self.text_at(step, "run").to_owned();
        let mut names = Vec::new();
        for from in [&self.yaml, self.job(job), step] {
            if let Some(env) = from["env"].as_hash() {
                names.extend(env.keys().filter_map(|key| key.as_str().map(str::to_owned)));
            }
        }
        (script, names)
    }

    /// Run that step (with [`FakeGh`] for `gh`) in `dir`, given a value for
    /// each upper-case variable its script reads, and for nothing its
    /// environment does not define (or the runner: `RUNNER_*`, `GITHUB_*`,
    /// and `AWS_*` from the credentials action).
    pub(crate) fn run_step(
        &self,
        gh: &FakeGh,
        (job, name): (&str, &str),
        dir: &std::path::Path,
        values: &[(&str, &str)],
    ) -> std::process::Output {
        let (script, defined) = self.step_script(job, name);
        let given: std::collections::BTreeSet<&str> =
            values.iter().map(|(name, _)| *name).collect();
        for name in &given {
            let by_runner = ["RUNNER_", "GITHUB_", "AWS_"]
                .iter()
                .any(|prefix| name.starts_with(prefix));
            assert!(
                by_runner || defined.iter().any(|defined| defined == name),
                "{}: job `{job}`'s step {name:?} is given {name}, which no env: defines",
                self.file
            );
        }
        let read = read_variables(&script);
        let wanted: std::collections::BTreeSet<&str> = read
            .iter()
            .map(String::as_str)
            .filter(|name| {
                name.bytes()
                    .all(|byte| byte.is_ascii_uppercase() || byte == b'_' || byte.is_ascii_digit())
            })
            .collect();
        assert!(
            wanted.is_subset(&given),
            "{}: job `{job}`'s step reads {wanted:?}; the test gives {given:?}",
            self.file
        );
        gh.run(&script, dir, values)
    }

    /// Every command the `run:` scripts of `job` run, with its step's position.
    fn commands(&self, job: &str) -> Vec<ShellCommand> {
        self.steps(job)
            .iter()
            .enumerate()
            .flat_map(|(step, node)| {
                let script = node["run"].as_str().unwrap_or_default();
                shell_commands(script)
                    .into_iter()
                    .map(move |words| ShellCommand { step, words })
            })
            .collect()
    }

    /// The first command of `job` that starts with `prefix`.
    fn command(&self, job: &str, prefix: &[&str]) -> ShellCommand {
        self.commands(job)
            .into_iter()
            .find(|command| command.starts_with(prefix))
            .unwrap_or_else(|| {
                let wanted = prefix.join(" ");
                self.fail(
                    "commands",
                    format_args!("no step of job `{job}` runs `{wanted}`"),
                )
            })
    }

    /// Every command, in every job, whose program is `program`.
    fn commands_of(&self, program: &str) -> Vec<(String, ShellCommand)> {
        self.jobs()
            .into_iter()
            .filter(|(_, job)| job["steps"].is_array())
            .flat_map(|(id, _)| {
                self.commands(&id)
                    .into_iter()
                    .filter(|command| command.starts_with(&[program]))
                    .map(move |command| (id.clone(), command))
            })
            .collect()
    }

    /// Every `uses:` value, of steps and of jobs calling reusable workflows.
    fn uses(&self) -> Vec<&str> {
        let jobs = self.jobs();
        let of_jobs = jobs.iter().filter_map(|(_, job)| job["uses"].as_str());
        let of_steps = jobs.iter().flat_map(|(_, job)| {
            job["steps"]
                .as_vec()
                .into_iter()
                .flatten()
                .filter_map(|step| step["uses"].as_str())
        });
        of_jobs.chain(of_steps).collect()
    }

    /// `name: value` of an `env:` mapping (workflow, job or step), as text.
    fn env_value(&self, from: &Yaml, name: &str) -> Option<String> {
        match &from["env"][name] {
            Yaml::String(text) => Some(text.clone()),
            Yaml::Integer(number) => Some(number.to_string()),
            Yaml::Boolean(flag) => Some(flag.to_string()),
            Yaml::BadValue => None,
            other => self.fail("structure", format_args!("env {name} is {other:?}")),
        }
    }
}

/// `owner/repo` (or `owner/repo/path`) of a step's `uses:`.
fn action_of(step: &Yaml) -> Option<&str> {
    step["uses"]
        .as_str()
        .map(|uses| uses.split('@').next().unwrap_or(uses))
}

/// A step's or job's `if:`, without `${{ }}`.
fn condition(node: &Yaml) -> Option<&str> {
    node["if"].as_str().map(|text| {
        let text = text.trim();
        text.strip_prefix("${{")
            .and_then(|inner| inner.strip_suffix("}}"))
            .unwrap_or(text)
            .trim()
    })
}

/// A job's GitHub environment: `environment: NAME` or `environment: {name: NAME}`.
fn environment_of(job: &Yaml) -> Option<&str> {
    job["environment"]
        .as_str()
        .or_else(|| job["environment"]["name"].as_str())
}

/// A `permissions:` mapping as `scope -> level`.
fn permissions_of(permissions: &Yaml) -> Option<BTreeMap<String, String>> {
    permissions.as_hash().map(|granted| {
        granted
            .iter()
            .map(|(scope, level)| {
                let text = |node: &Yaml| node.as_str().unwrap_or("?").to_owned();
                (text(scope), text(level))
            })
            .collect()
    })
}

fn grants(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(scope, level)| ((*scope).to_owned(), (*level).to_owned()))
        .collect()
}

/// One simple command of a `run:` script.
#[derive(Debug, Clone)]
struct ShellCommand {
    step: usize,
    words: Vec<String>,
}

impl ShellCommand {
    fn starts_with(&self, prefix: &[&str]) -> bool {
        self.words.len() >= prefix.len() && self.words.iter().zip(prefix).all(|(w, p)| w == p)
    }

    fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }

    /// The value of `--flag value` or `--flag=value`.
    fn value_of(&self, flag: &str) -> Option<&str> {
        self.words.iter().enumerate().find_map(|(index, word)| {
            if word == flag {
                self.words.get(index + 1).map(String::as_str)
            } else {
                word.strip_prefix(flag)?.strip_prefix('=')
            }
        })
    }

    fn line(&self) -> String {
        self.words.join(" ")
    }
}

/// Every simple command of a shell script, those inside `$(…)` included, as
/// words with quotes removed. `$VAR` stays as written; a command substitution
/// stands as `$(…)` in the word around it; redirections are dropped.
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    #[derive(Default)]
    struct Level {
        words: Vec<String>,
        word: Option<String>,
        double_quoted: bool,
        redirect: bool,
    }
    impl Level {
        fn push(&mut self, text: &str) {
            self.word.get_or_insert_with(String::new).push_str(text);
        }
        fn end_word(&mut self) {
            if let Some(word) = self.word.take()
                && !std::mem::take(&mut self.redirect)
            {
                self.words.push(word);
            }
        }
        fn end_command(&mut self, commands: &mut Vec<Vec<String>>) {
            self.end_word();
            if !self.words.is_empty() {
                commands.push(std::mem::take(&mut self.words));
            }
        }
    }

    let mut commands = Vec::new();
    let mut levels = vec![Level::default()];
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        let nested = levels.len() > 1;
        let level = levels.last_mut().expect("the script's own level");
        let substitution = c == '$' && chars.peek() == Some(&'(');
        if substitution {
            chars.next();
            levels.push(Level::default());
        } else if level.double_quoted {
            match c {
                '"' => level.double_quoted = false,
                '\\' => level.push(&chars.next().map(String::from).unwrap_or_default()),
                _ => level.push(&c.to_string()),
            }
        } else {
            match c {
                '\'' => {
                    level.push("");
                    for quoted in chars.by_ref().take_while(|&q| q != '\'') {
                        level.push(&quoted.to_string());
                    }
                }
                '"' => {
                    level.push("");
                    level.double_quoted = true;
                }
                '\\' => match chars.next() {
                    Some('\n') | None => {}
                    Some(escaped) => level.push(&escaped.to_string()),
                },
                ')' if nested => {
                    let mut inner = levels.pop().expect("an inner level");
                    inner.end_command(&mut commands);
                    levels.last_mut().expect("the outer level").push("$(…)");
                }
                // Outside a substitution, `)` closes a `case` pattern: what precedes
                // it is the pattern, not a command.
                ')' => {
                    level.word = None;
                    level.words.clear();
                }
                ' ' | '\t' => level.end_word(),
                '\n' | ';' | '&' | '|' => level.end_command(&mut commands),
                '>' | '<' => {
                    level.end_word();
                    while chars.next_if_eq(&'>').is_some() {}
                    level.redirect = true;
                }
                '#' if level.word.is_none() => {
                    chars.by_ref().take_while(|&q| q != '\n').for_each(drop);
                    level.end_command(&mut commands);
                }
                _ => level.push(&c.to_string()),
            }
        }
    }
    while let Some(mut level) = levels.pop() {
        level.end_command(&mut commands);
    }
    commands
}

/// A word with every `$VAR`, `${VAR}` and `$(…)` replaced by `placeholder`.
fn with_placeholders(word: &str) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('(') => chars.by_ref().take_while(|&q| q != ')').for_each(drop),
            Some('{') => chars.by_ref().take_while(|&q| q != '}').for_each(drop),
            _ => {
                while chars
                    .next_if(|q| q.is_ascii_alphanumeric() || *q == '_')
                    .is_some()
                {}
            }
        }
        out.push_str("placeholder");
    }
    out
}

/// A deployer command line parsed by the deployer's own clap definition, with
/// the environment variables it would read (DEPLOYER_ENV, AWS_REGION, …)
/// ignored, so that only the command line counts.
fn parse_deployer(words: &[String]) -> Result<Cli, clap::Error> {
    fn without_env(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| arg.env(None))
            .mut_subcommands(without_env)
    }
    let args: Vec<String> = words.iter().map(|word| with_placeholders(word)).collect();
    let matches = without_env(Cli::command()).try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// A `loadtest` command line of a job: its command, the scenario it runs and
/// whether that writes, parsed by loadtest's own clap definition, and the
/// `if:` of its step.
struct LoadTest {
    command: ShellCommand,
    scenario: &'static str,
    writes: bool,
    condition: Option<String>,
}

impl LoadTest {
    /// The matrix environments its step runs in, with the load tests on
    /// (`RUN_LOAD_TESTS` unset) or off (`false`).
    fn environments(&self, workflow: &Workflow, load_tests_on: bool) -> Vec<&'static str> {
        environments_where(workflow, self.condition.as_deref(), load_tests_on)
    }
}

/// The matrix environments a step whose `if:` is `condition` runs in, with the
/// load tests on (`RUN_LOAD_TESTS` unset) or off (`false`).
fn environments_where(
    workflow: &Workflow,
    condition: Option<&str>,
    load_tests_on: bool,
) -> Vec<&'static str> {
    let Some(condition) = condition else {
        return ENVIRONMENTS.to_vec();
    };
    ENVIRONMENTS
        .into_iter()
        .filter(|environment| {
            let value = |name: &str| match name {
                "matrix.environment" => Some((*environment).to_owned()),
                "vars.RUN_LOAD_TESTS" => Some(if load_tests_on { "" } else { "false" }.to_owned()),
                _ => None,
            };
            evaluate(condition, &value).unwrap_or_else(|error| {
                workflow.fail(
                    "conditions",
                    format_args!("`if: {condition}` is not understood: {error}"),
                )
            })
        })
        .collect()
}

fn load_tests(workflow: &Workflow, job: &str) -> Vec<LoadTest> {
    workflow
        .commands(job)
        .into_iter()
        .filter(|command| command.starts_with(&["loadtest"]))
        .map(|command| {
            let cli = parse_loadtest(&command.words).unwrap_or_else(|error| {
                workflow.fail(
                    "loadtest command line",
                    format_args!("`{}` does not parse: {error}", command.line()),
                )
            });
            let scenario = cli.scenario.scenario();
            let condition = condition(&workflow.steps(job)[command.step]).map(str::to_owned);
            LoadTest {
                command,
                scenario: scenario.name(),
                writes: scenario.writes(),
                condition,
            }
        })
        .collect()
}

/// A loadtest command line parsed by loadtest's own clap definition, without
/// the environment variables it would read (API_BASE_URL, …).
fn parse_loadtest(words: &[String]) -> Result<loadtest::cli::Cli, clap::Error> {
    fn without_env(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| arg.env(None))
            .mut_subcommands(without_env)
    }
    let args: Vec<String> = words.iter().map(|word| with_placeholders(word)).collect();
    let matches = without_env(loadtest::cli::Cli::command()).try_get_matches_from(args)?;
    loadtest::cli::Cli::from_arg_matches(&matches)
}

/// Evaluate a step's `if:` expression (without `${{ }}`) as GitHub would:
/// `||`, `&&`, `!`, parentheses, `==` and `!=` (case-insensitive, as GitHub
/// compares strings) between contexts and '…' literals, and the status
/// functions `success()` and `always()` (true here: the steps before passed)
/// and `cancelled()` (false: the run was not cancelled). A job's `if:` may be
/// wrapped in `${{ }}`.
/// `value` gives each context; an unknown one, or anything else, is an error.
fn evaluate(expression: &str, value: &dyn Fn(&str) -> Option<String>) -> Result<bool, String> {
    #[derive(Debug, Clone, PartialEq)]
    enum Token {
        Word(String),
        Text(String),
        Op(&'static str),
    }
    let expression = expression.trim();
    let expression = expression
        .strip_prefix("${{")
        .and_then(|inner| inner.strip_suffix("}}"))
        .unwrap_or(expression);
    let mut tokens = Vec::new();
    let mut chars = expression.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let text: String = chars.by_ref().take_while(|&q| q != '\'').collect();
            tokens.push(Token::Text(text));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&w) = chars.peek() {
                if w.is_ascii_alphanumeric() || matches!(w, '_' | '.' | '-') {
                    word.push(w);
                    chars.next();
                } else {
                    break;
                }
            }
            if chars.peek() == Some(&'(') {
                chars.next();
                if chars.next() != Some(')') {
                    return Err(format!("{word}(…) takes no arguments here"));
                }
                word.push_str("()");
            }
            tokens.push(Token::Word(word));
        } else {
            chars.next();
            let op = match (c, chars.peek()) {
                ('=', Some('=')) => "==",
                ('!', Some('=')) => "!=",
                ('&', Some('&')) => "&&",
                ('|', Some('|')) => "||",
                ('!', _) => "!",
                ('(', _) => "(",
                (')', _) => ")",
                _ => return Err(format!("unexpected {c:?}")),
            };
            if op.len() == 2 {
                chars.next();
            }
            tokens.push(Token::Op(op));
        }
    }

    struct Parser<'a> {
        tokens: Vec<Token>,
        at: usize,
        value: &'a dyn Fn(&str) -> Option<String>,
    }
    impl Parser<'_> {
        fn peek(&self) -> Option<&Token> {
            self.tokens.get(self.at)
        }
        fn eat(&mut self, op: &'static str) -> bool {
            let found = self.peek() == Some(&Token::Op(op));
            if found {
                self.at += 1;
            }
            found
        }
        fn or(&mut self) -> Result<bool, String> {
            let mut result = self.and()?;
            while self.eat("||") {
                result = self.and()? || result;
            }
            Ok(result)
        }
        fn and(&mut self) -> Result<bool, String> {
            let mut result = self.unary()?;
            while self.eat("&&") {
                result = self.unary()? && result;
            }
            Ok(result)
        }
        fn unary(&mut self) -> Result<bool, String> {
            if self.eat("!") {
                return Ok(!self.unary()?);
            }
            if self.eat("(") {
                let inner = self.or()?;
                return if self.eat(")") {
                    Ok(inner)
                } else {
                    Err("a `(` is not closed".into())
                };
            }
            if let Some(Token::Word(word)) = self.peek()
                && matches!(word.as_str(), "success()" | "always()" | "cancelled()")
            {
                let passed = word != "cancelled()";
                self.at += 1;
                return Ok(passed);
            }
            let left = self.operand()?;
            let equal = if self.eat("==") {
                true
            } else if self.eat("!=") {
                false
            } else {
                return Err(format!("{left:?} is not compared with anything"));
            };
            let right = self.operand()?;
            Ok(left.eq_ignore_ascii_case(&right) == equal)
        }
        fn operand(&mut self) -> Result<String, String> {
            let token = self.peek().cloned();
            self.at += 1;
            match token {
                Some(Token::Text(text)) => Ok(text),
                Some(Token::Word(word)) => {
                    (self.value)(&word).ok_or_else(|| format!("unknown context {word}"))
                }
                other => Err(format!("expected a value, found {other:?}")),
            }
        }
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        value,
    };
    let result = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err(format!("unexpected {:?}", parser.peek()));
    }
    Ok(result)
}

// ---- checks: each panics naming the workflow and the property ----

fn check_triggers(workflow: &Workflow, expected: &[&str]) {
    let mut triggers = workflow.keys(&workflow.yaml, "on");
    triggers.sort();
    let mut expected: Vec<String> = expected.iter().map(|t| (*t).to_owned()).collect();
    expected.sort();
    workflow.ensure(
        triggers == expected,
        "triggers",
        format_args!("`on` is {triggers:?}, expected {expected:?}"),
    );
}

/// A `workflow_dispatch` input that is a choice of exactly dev, stage, prod.
fn check_environment_choice(workflow: &Workflow) {
    let input = workflow.at("on.workflow_dispatch.inputs.environment");
    workflow.ensure(
        workflow.text_at(input, "type") == "choice"
            && workflow.list_at(input, "options") == ENVIRONMENTS,
        "environment input",
        format_args!("`environment` must be a choice of {ENVIRONMENTS:?}"),
    );
}

fn check_least_permissions(workflow: &Workflow) {
    const PROPERTY: &str = "least permissions";
    let top_level = permissions_of(workflow.at("permissions"));
    workflow.ensure(
        top_level.as_ref().is_some_and(BTreeMap::is_empty)
            || top_level == Some(grants(&[("contents", "read")])),
        PROPERTY,
        "the workflow's `permissions` must be `{}` or `contents: read`",
    );
    for broad in ["write-all", "read-all"] {
        workflow.ensure(
            !workflow.text.contains(broad),
            PROPERTY,
            format_args!("`{broad}` is granted"),
        );
    }
    for (id, job) in workflow.jobs() {
        let granted = permissions_of(&job["permissions"]).unwrap_or_else(|| {
            workflow.fail(
                PROPERTY,
                format_args!("job `{id}` declares no `permissions`"),
            )
        });
        let uses_aws = job["steps"]
            .as_vec()
            .into_iter()
            .flatten()
            .any(|step| action_of(step) == Some(AWS_CREDENTIALS));
        let writer = GITHUB_WRITERS
            .iter()
            .find(|(file, job, _)| *file == workflow.file && *job == id);
        let mut expected = match writer {
            Some((_, _, granted)) => {
                workflow.ensure(
                    !uses_aws,
                    PROPERTY,
                    format_args!("job `{id}` writes to GitHub and must not hold AWS credentials"),
                );
                grants(granted)
            }
            None if uses_aws => grants(&[("contents", "read"), ("id-token", "write")]),
            None => grants(&[("contents", "read")]),
        };
        // preview.yml's sweeper also reads whether pull requests are open.
        if (workflow.file.as_str(), id.as_str()) == ("preview.yml", "sweep") {
            expected.insert("pull-requests".into(), "read".into());
        }
        workflow.ensure(
            granted == expected,
            PROPERTY,
            format_args!("job `{id}` is granted {granted:?}, expected {expected:?}"),
        );
    }
}

fn check_no_access_keys(workflow: &Workflow) {
    let text = workflow.text.to_lowercase();
    for key in [
        "aws-access-key-id",
        "aws-secret-access-key",
        "aws-session-token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    ] {
        workflow.ensure(
            !text.contains(key),
            "no access keys",
            format_args!("mentions {key}"),
        );
    }
}

/// Every AWS credential comes through OIDC: the deploy role, or the bootstrap
/// administrator role only in jobs behind the `bootstrap` environment; the
/// region from `vars.AWS_REGION`, us-east-1 by default.
fn check_oidc_credentials(workflow: &Workflow) {
    for (id, job) in workflow.jobs() {
        let role = match environment_of(job) {
            _ if workflow.file == "preview.yml" => PREVIEW_ROLE,
            Some("bootstrap") => BOOTSTRAP_ROLE,
            Some(deployer::stacks::bootstrap::PLAN_ENVIRONMENT) => PLAN_ROLE,
            _ => DEPLOY_ROLE,
        };
        for step in job["steps"].as_vec().into_iter().flatten() {
            if action_of(step) != Some(AWS_CREDENTIALS) {
                continue;
            }
            let assumed = workflow.text_at(step, "with.role-to-assume");
            workflow.ensure(
                assumed == role,
                "role-to-assume",
                format_args!("job `{id}` assumes {assumed}, expected {role}"),
            );
            let region = workflow.text_at(step, "with.aws-region");
            workflow.ensure(
                region == REGION,
                "aws-region",
                format_args!("job `{id}` uses region {region}, expected {REGION}"),
            );
        }
    }
}

/// Every action outside this repository is pinned to a full commit SHA, with
/// the version it stands for in a comment: `uses: owner/repo@<40 hex> # v1.2.3`.
fn check_pinned_actions(workflow: &Workflow) {
    const PROPERTY: &str = "pinned actions";
    let uses = workflow.uses();
    workflow.ensure(!uses.is_empty(), PROPERTY, "no `uses:` at all");
    for value in uses.into_iter().filter(|value| !value.starts_with("./")) {
        let (action, reference) = value
            .split_once('@')
            .unwrap_or_else(|| workflow.fail(PROPERTY, format_args!("`{value}` names no commit")));
        workflow.ensure(
            action.split('/').count() >= 2 && !action.starts_with("docker:"),
            PROPERTY,
            format_args!("`{value}` is not an owner/repo action"),
        );
        workflow.ensure(
            reference.len() == 40
                && reference
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            PROPERTY,
            format_args!("`{value}` is not pinned to a full 40-hex commit SHA"),
        );
        let lines: Vec<&str> = workflow
            .text
            .lines()
            .filter(|line| line.contains(&format!("uses: {value}")))
            .collect();
        let has_version_comment = |line: &&str| {
            let after = line.split_once(value).map_or("", |(_, rest)| rest).trim();
            after
                .strip_prefix('#')
                .map(str::trim)
                .and_then(|comment| comment.strip_prefix('v'))
                .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
        };
        workflow.ensure(
            !lines.is_empty() && lines.iter().all(has_version_comment),
            PROPERTY,
            format_args!("`uses: {value}` lacks its version comment (`# vX.Y.Z`)"),
        );
    }
}

fn check_checkouts_keep_no_credentials(workflow: &Workflow) {
    for (id, job) in workflow.jobs() {
        for step in job["steps"].as_vec().into_iter().flatten() {
            if action_of(step) == Some("actions/checkout") {
                workflow.ensure(
                    step["with"]["persist-credentials"].as_bool() == Some(false),
                    "persist-credentials",
                    format_args!("a checkout in job `{id}` keeps the token"),
                );
            }
        }
    }
}

/// `${{ }}` is never expanded into a script (pass values through `env:`).
fn check_no_expressions_in_scripts(workflow: &Workflow) {
    for (id, job) in workflow.jobs() {
        for step in job["steps"].as_vec().into_iter().flatten() {
            let script = step["run"].as_str().unwrap_or_default();
            workflow.ensure(
                !script.contains("${{"),
                "no expressions in run scripts",
                format_args!("a step of job `{id}` expands `${{{{ }}}}` in its script"),
            );
        }
    }
}

/// Every deployer command line parses with the deployer's clap definition, and
/// every command that changes AWS runs with `--auto-approve` (there is no
/// terminal to answer its prompt).
fn check_deployer_commands_parse(workflow: &Workflow) {
    for (job, command) in workflow.commands_of("deployer") {
        let line = command.line();
        let parsed = parse_deployer(&command.words).unwrap_or_else(|error| {
            workflow.fail(
                "deployer command line",
                format_args!("`{line}` in job `{job}` does not parse: {error}"),
            )
        });
        let calls_aws = !matches!(parsed.command, cli::Command::PlanReport(_));
        let approved = match parsed.command {
            cli::Command::Bootstrap(args) => args.plan || args.auto_approve,
            cli::Command::Apply(args) => args.auto_approve,
            cli::Command::Destroy(args) => args.auto_approve,
            _ => true,
        };
        workflow.ensure(
            approved,
            "deployer command line",
            format_args!("`{line}` in job `{job}` changes AWS without --auto-approve"),
        );
        // The region is explicit: the one the job's credentials are for, never
        // left to whatever AWS_REGION the deployer might find (plan-report
        // reads files only).
        workflow.ensure(
            !calls_aws
                || (parsed.region.is_some() && command.value_of("--region") == Some("$AWS_REGION")),
            "deployer command line",
            format_args!("`{line}` in job `{job}` does not pass --region \"$AWS_REGION\""),
        );
    }
}

/// The checks every workflow must pass.
fn check_common(workflow: &Workflow) {
    check_least_permissions(workflow);
    check_no_access_keys(workflow);
    check_oidc_credentials(workflow);
    check_pinned_actions(workflow);
    check_checkouts_keep_no_credentials(workflow);
    check_no_expressions_in_scripts(workflow);
    check_deployer_commands_parse(workflow);
}

fn check_ci(workflow: &Workflow) {
    check_triggers(workflow, &["pull_request", "push"]);
    workflow.command("checks", &["cargo", "fmt", "--all", "--", "--check"]);
    let clippy = workflow.command("checks", &["cargo", "clippy"]);
    workflow.ensure(
        clippy.has("--workspace")
            && clippy.has("--all-targets")
            && clippy
                .words
                .windows(2)
                .any(|pair| pair == ["-D", "warnings"]),
        "clippy",
        format_args!(
            "`{}` must cover the workspace with -D warnings",
            clippy.line()
        ),
    );
    workflow.command("checks", &["scripts/lint-workflows"]);
    workflow.command("checks", &["scripts/test"]);
    check_build_cache(workflow, "checks");
}

/// `job` restores cargo's registry and `target/` before it compiles, keyed on
/// `Cargo.lock` and the toolchain: a push that changes no dependency does not
/// compile them again.
fn check_build_cache(workflow: &Workflow, job: &str) {
    let property = "build cache";
    let (position, cache) = workflow.step_using(job, "actions/cache");
    let paths = workflow.text_at(cache, "with.path");
    let key = workflow.text_at(cache, "with.key");
    workflow.ensure(
        paths.contains("~/.cargo/registry/") && paths.lines().any(|line| line.trim() == "target/"),
        property,
        format_args!("job `{job}` caches {paths:?}, not the registry and target/"),
    );
    workflow.ensure(
        key.contains("hashFiles('Cargo.lock')") && key.contains("env.RUST_TOOLCHAIN"),
        property,
        format_args!("job `{job}`'s cache key {key:?} must name Cargo.lock and the toolchain"),
    );
    let first_build = workflow
        .commands(job)
        .into_iter()
        .find(|command| command.starts_with(&["cargo"]) && !command.starts_with(&["cargo", "fmt"]))
        .map_or(usize::MAX, |command| command.step);
    workflow.ensure(
        position < first_build,
        property,
        format_args!("job `{job}` restores the cache after it compiles"),
    );
}

fn check_bootstrap(workflow: &Workflow) {
    check_triggers(workflow, &["workflow_call", "workflow_dispatch"]);
    const JOB: &str = "bootstrap";
    let job = workflow.job(JOB);
    workflow.ensure(
        environment_of(job) == Some("bootstrap"),
        "environment",
        "the job must run in the `bootstrap` environment",
    );
    let bootstrap = workflow.command(JOB, &["deployer", "bootstrap", "--auto-approve"]);
    workflow.ensure(
        bootstrap.has("github_repository=$GITHUB_REPOSITORY"),
        "trust",
        "bootstrap must trust the repository the workflow runs in (--var github_repository=$GITHUB_REPOSITORY)",
    );
    let (_, credentials) = workflow.step_using(JOB, AWS_CREDENTIALS);
    workflow.ensure(
        credentials["with"]["mask-aws-account-id"].as_bool() == Some(false),
        "outputs",
        "with the account id masked, GitHub drops outputs holding ARNs",
    );
    for name in BOOTSTRAP_OUTPUTS {
        let output = workflow.text_at(job, &format!("outputs.{name}"));
        let step_id = output
            .trim_start_matches("${{")
            .trim_end_matches("}}")
            .trim()
            .strip_prefix("steps.")
            .and_then(|rest| rest.strip_suffix(&format!(".outputs.{name}")))
            .unwrap_or_else(|| {
                workflow.fail("outputs", format_args!("job output {name} is {output}"))
            });
        let producer = workflow
            .steps(JOB)
            .iter()
            .position(|step| step["id"].as_str() == Some(step_id))
            .unwrap_or_else(|| workflow.fail("outputs", format_args!("no step `{step_id}`")));
        let reads = workflow
            .command(JOB, &["deployer", "output", "--env", "bootstrap", name])
            .step;
        workflow.ensure(
            reads == producer && bootstrap.step < producer,
            "outputs",
            format_args!(
                "{name} must come from `deployer output --env bootstrap {name}` after bootstrap"
            ),
        );
        let called = workflow.text_at(
            workflow.at("on.workflow_call.outputs"),
            &format!("{name}.value"),
        );
        workflow.ensure(
            called == format!("${{{{ jobs.{JOB}.outputs.{name} }}}}"),
            "outputs",
            format_args!("workflow_call output {name} is {called}"),
        );
    }
    let summary = workflow
        .steps(JOB)
        .iter()
        .filter_map(|step| step["run"].as_str())
        .any(|script| {
            script.contains("GITHUB_STEP_SUMMARY")
                && script.contains("AWS_ROLE_TO_ASSUME")
                && script.contains("AWS_PLAN_ROLE_TO_ASSUME --env plan")
        });
    workflow.ensure(
        summary,
        "step summary",
        "no step tells, in the step summary, how to store AWS_ROLE_TO_ASSUME and the plan environment's AWS_PLAN_ROLE_TO_ASSUME",
    );
}

/// The environments the deploy matrix runs, in order: a plain list, or the
/// list in a `fromJSON(...)` expression that a manual run narrows to its input.
fn deploy_matrix(workflow: &Workflow) -> Vec<String> {
    const PROPERTY: &str = "matrix";
    let matrix = workflow.at("jobs.deploy.strategy.matrix.environment");
    if matrix.is_array() {
        return workflow.list_at(workflow.at("jobs.deploy.strategy.matrix"), "environment");
    }
    let expression = matrix
        .as_str()
        .unwrap_or_else(|| workflow.fail(PROPERTY, "matrix.environment is neither list nor text"));
    workflow.ensure(
        expression.contains("workflow_dispatch") && expression.contains("inputs.environment"),
        PROPERTY,
        "a manual run must deploy only the environment chosen",
    );
    let lists: Vec<&str> = expression
        .split('\'')
        .skip(1)
        .step_by(2)
        .filter(|quoted| quoted.starts_with('[') && !quoted.contains('{'))
        .collect();
    let [list] = lists.as_slice() else {
        workflow.fail(
            PROPERTY,
            format_args!("expected one list of environments in {expression}"),
        )
    };
    serde_json::from_str(list)
        .unwrap_or_else(|error| workflow.fail(PROPERTY, format_args!("{list}: {error}")))
}

fn check_deploy_triggers(workflow: &Workflow) {
    check_triggers(workflow, &["push", "workflow_dispatch"]);
    let push = workflow.at("on.push");
    workflow.ensure(
        workflow.list_at(push, "branches") == ["main"],
        "triggers",
        "pushes deploy from main only",
    );
    let paths = workflow.list_at(push, "paths");
    // Every crate that goes into what is deployed, read from the workspace so a
    // new one cannot be forgotten (the emulator is test support only).
    let workspace: toml::Table = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"),
    )
    .expect("workspace Cargo.toml")
    .parse()
    .expect("workspace Cargo.toml is TOML");
    let crates: Vec<String> = workspace["workspace"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|member| member.as_str())
        .filter(|member| *member != "emulator")
        .map(|member| format!("{member}/**"))
        .collect();
    assert!(crates.contains(&"schema/**".to_owned()), "{crates:?}");
    for wanted in crates.iter().map(String::as_str).chain([
        ".github/workflows/**",
        "Cargo.toml",
        "Cargo.lock",
        "deployer.toml",
    ]) {
        workflow.ensure(
            paths.iter().any(|path| path == wanted),
            "triggers",
            format_args!("a push touching {wanted} does not deploy"),
        );
    }
    check_environment_choice(workflow);
}

fn check_deploy_matrix(workflow: &Workflow) {
    const PROPERTY: &str = "matrix";
    let environments = deploy_matrix(workflow);
    workflow.ensure(
        environments == ENVIRONMENTS,
        PROPERTY,
        format_args!("deploys {environments:?}, expected {ENVIRONMENTS:?} in that order"),
    );
    let strategy = workflow.at("jobs.deploy.strategy");
    workflow.ensure(
        strategy["max-parallel"].as_i64() == Some(1) && strategy["fail-fast"].as_bool() == Some(true),
        PROPERTY,
        "environments deploy one at a time (max-parallel: 1), a failure stopping the rest (fail-fast: true)",
    );
    let job = workflow.job("deploy");
    workflow.ensure(
        environment_of(job) == Some("${{ matrix.environment }}"),
        "environment",
        "the deploy job runs in the GitHub environment of its matrix entry",
    );
    workflow.ensure(
        workflow.env_value(job, "DEPLOYER_ENV").as_deref() == Some("${{ matrix.environment }}"),
        "environment",
        "DEPLOYER_ENV must be the matrix entry",
    );
}

/// Deploys of one environment never overlap, and are never cancelled half-way.
fn check_concurrency_per_environment(workflow: &Workflow, job: &str, environment: &str) {
    let concurrency = workflow.node(workflow.job(job), "concurrency");
    let group = workflow.text_at(concurrency, "group");
    workflow.ensure(
        group == format!("deploy-${{{{ {environment} }}}}")
            && concurrency["cancel-in-progress"].as_bool() == Some(false),
        "concurrency",
        format_args!(
            "job `{job}` must be in group deploy-${{{{ {environment} }}}} without cancel-in-progress, not {group}"
        ),
    );
}

fn check_deploy_build(workflow: &Workflow) {
    let architecture = workflow.env_value(&workflow.yaml, "LAMBDA_ARCHITECTURE");
    workflow.ensure(
        architecture.as_deref() == Some("${{ vars.LAMBDA_ARCHITECTURE || 'x86_64' }}"),
        "architecture",
        "LAMBDA_ARCHITECTURE must come from vars.LAMBDA_ARCHITECTURE, x86_64 by default",
    );
    for flag in ["--x86-64", "--arm64"] {
        let builds = workflow.commands("build").into_iter().any(|command| {
            command.starts_with(&["cargo", "lambda", "build", "--release"])
                && command.value_of("--output-format") == Some("zip")
                && command.has(flag)
        });
        workflow.ensure(
            builds,
            "architecture",
            format_args!("no `cargo lambda build --release --output-format zip {flag}`"),
        );
    }
    workflow.step_using("build", "actions/upload-artifact");
}

fn check_deploy_steps(workflow: &Workflow) {
    const JOB: &str = "deploy";
    let plan = workflow.command(JOB, &["deployer", "plan"]);
    let apply = workflow.command(JOB, &["deployer", "apply"]);
    let (download, download_step) = workflow.step_using(JOB, "actions/download-artifact");
    let bundle = workflow.text_at(download_step, "with.path");
    for command in [&plan, &apply] {
        let line = command.line();
        workflow.ensure(
            command.value_of("--env") == Some("$DEPLOYER_ENV")
                && command.value_of("--var") == Some("architecture=$LAMBDA_ARCHITECTURE")
                && command.value_of("--artifact")
                    == Some(format!("{bundle}/bootstrap.zip").as_str())
                && download < command.step,
            "deployer commands",
            format_args!("`{line}` must name --env, the architecture and the downloaded zip"),
        );
    }
    workflow.ensure(
        apply.has("--auto-approve") && plan.step < apply.step,
        "deployer commands",
        "`deployer apply --auto-approve` must follow `deployer plan`",
    );
    // What is applied is the plan that was saved and shown, in the same job.
    let saved = plan.value_of("--out");
    workflow.ensure(
        saved.is_some() && apply.words.get(2).map(String::as_str) == saved,
        "saved plan",
        "`deployer apply` must apply the file `deployer plan --out` saved",
    );
    let plan_script = workflow.steps(JOB)[plan.step]["run"]
        .as_str()
        .unwrap_or_default();
    workflow.ensure(
        plan_script.contains(">> \"$GITHUB_STEP_SUMMARY\""),
        "saved plan",
        "the plan step must show the plan in the run's summary ($GITHUB_STEP_SUMMARY)",
    );

    let url = workflow.command(
        JOB,
        &[
            "deployer",
            "output",
            "--env",
            "$DEPLOYER_ENV",
            "api_base_url",
        ],
    );
    let job = workflow.job(JOB);
    let runs = load_tests(workflow, JOB);
    let read_only: Vec<&LoadTest> = runs.iter().filter(|run| !run.writes).collect();
    let [smoke] = read_only.as_slice() else {
        workflow.fail(
            "smoke test",
            format_args!(
                "expected one `loadtest smoke --read-only`, found {}",
                read_only.len()
            ),
        )
    };
    workflow.ensure(
        url.step == smoke.command.step
            && smoke.command.value_of("--url").is_some()
            && apply.step < smoke.command.step,
        "smoke test",
        "`loadtest smoke --read-only --url` must run after apply against `deployer output --env E api_base_url`",
    );
    for load_tests_on in [true, false] {
        workflow.ensure(
            smoke.environments(workflow, load_tests_on) == ENVIRONMENTS,
            "smoke test",
            "the read-only smoke test runs in every environment, always",
        );
    }

    // What writes runs where tables are deleted, and only there.
    let mut last = smoke.command.step;
    let mut summaries = vec![smoke.command.value_of("--json").map(str::to_owned)];
    for scenario in WRITE_SCENARIOS {
        let matching: Vec<&LoadTest> = runs
            .iter()
            .filter(|run| run.writes && run.scenario == scenario)
            .collect();
        let [run] = matching.as_slice() else {
            workflow.fail(
                "write scenarios",
                format_args!(
                    "expected one `loadtest {scenario}`, found {}",
                    matching.len()
                ),
            )
        };
        let step = &workflow.steps(JOB)[run.command.step];
        let environments = run.environments(workflow, true);
        workflow.ensure(
            environments == WRITE_ENVIRONMENTS,
            "write scenarios",
            format_args!(
                "`{}` runs in {environments:?}: scenarios that write run in {WRITE_ENVIRONMENTS:?} only",
                run.command.line()
            ),
        );
        let gated = run.environments(workflow, false);
        let is_load = LOAD_SCENARIOS.contains(&scenario);
        workflow.ensure(
            if is_load {
                gated.is_empty()
            } else {
                gated == WRITE_ENVIRONMENTS
            },
            "load tests",
            format_args!(
                "with RUN_LOAD_TESTS=false, `{}` runs in {gated:?}: only the load scenarios are skipped",
                run.command.line()
            ),
        );
        workflow.ensure(
            last < run.command.step,
            "load tests",
            format_args!(
                "`loadtest {scenario}` must follow the read-only smoke test, in the order {WRITE_SCENARIOS:?}"
            ),
        );
        workflow.ensure(
            run.command.value_of("--url").is_some()
                || workflow.env_value(step, "API_BASE_URL").is_some(),
            "load tests",
            format_args!("`loadtest {scenario}` is given no URL"),
        );
        last = run.command.step;
        summaries.push(run.command.value_of("--json").map(str::to_owned));
    }
    workflow.ensure(
        runs.len() == 1 + WRITE_SCENARIOS.len(),
        "write scenarios",
        format_args!(
            "{} loadtest command lines, expected {}",
            runs.len(),
            1 + WRITE_SCENARIOS.len()
        ),
    );
    for run in &runs {
        workflow.ensure(
            !run.command.has("--allow-writes"),
            "write scenarios",
            format_args!(
                "`{}` passes --allow-writes: loadtest's refusal to write where tables are not deleted is what keeps test traffic out of prod",
                run.command.line()
            ),
        );
    }
    let duration = workflow.env_value(job, "LOAD_DURATION_SECONDS");
    workflow.ensure(
        duration.as_deref() == Some("20"),
        "load tests",
        format_args!("LOAD_DURATION_SECONDS is {duration:?}, expected 20"),
    );

    let (upload, upload_step) = workflow.step_using(JOB, "actions/upload-artifact");
    let uploaded = workflow
        .text_at(upload_step, "with.path")
        .trim_end_matches('/');
    let directory = workflow.env_value(job, "SUMMARIES").unwrap_or_default();
    workflow.ensure(
        condition(upload_step) == Some("always()") && last < upload,
        "summaries",
        "the load test summaries are uploaded last, `if: always()`",
    );
    for summary in summaries {
        let summary = summary
            .unwrap_or_default()
            .replace("$SUMMARIES", &directory);
        workflow.ensure(
            summary.starts_with(&format!("{uploaded}/")),
            "summaries",
            format_args!("summary {summary:?} is not under the uploaded {uploaded}/"),
        );
    }
}

/// `needs:` of a job, one job or a list.
fn needs_of(job: &Yaml) -> Vec<String> {
    match &job["needs"] {
        Yaml::String(one) => vec![one.clone()],
        Yaml::Array(many) => many
            .iter()
            .filter_map(|need| need.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Prod's reviewers read prod's plan before they approve it. The job
/// plan-prod, which needs no approval (the GitHub environment `plan`) and
/// assumes the read-only plan role, plans prod, shows the plan in the run's
/// summary and uploads it. The prod entry of the deploy matrix, the one they
/// approve, plans nothing itself: it downloads that artifact, from this same
/// run, and applies that file.
fn check_prod_plan(workflow: &Workflow) {
    const JOB: &str = "plan-prod";
    const PROPERTY: &str = "prod plan";
    let job = workflow.job(JOB);
    workflow.ensure(
        environment_of(job) == Some(deployer::stacks::bootstrap::PLAN_ENVIRONMENT),
        PROPERTY,
        "plan-prod must run in the GitHub environment `plan`, which has no reviewers and whose jobs only the plan role trusts",
    );
    workflow.ensure(
        needs_of(job) == ["build"],
        PROPERTY,
        "plan-prod needs the build (the zip it plans with) and nothing else",
    );
    let job_runs = |event: &str, input: &str| {
        let condition = workflow.text_at(job, "if");
        let value = |name: &str| match name {
            "github.event_name" => Some(event.to_owned()),
            "inputs.environment" => Some(input.to_owned()),
            _ => None,
        };
        evaluate(condition, &value).unwrap_or_else(|error| {
            workflow.fail("conditions", format_args!("`if: {condition}`: {error}"))
        })
    };
    workflow.ensure(
        job_runs("push", "")
            && job_runs("workflow_dispatch", "prod")
            && !job_runs("workflow_dispatch", "dev"),
        PROPERTY,
        "plan-prod runs whenever prod deploys (a push, a manual run of prod), and only then",
    );
    workflow.ensure(
        workflow.env_value(job, "DEPLOYER_ENV").as_deref() == Some("prod"),
        PROPERTY,
        "plan-prod plans DEPLOYER_ENV=prod",
    );
    let plan = workflow.command(JOB, &["deployer", "plan"]);
    let (bundle_step, bundle) = workflow.step_using(JOB, "actions/download-artifact");
    let bundle = workflow.text_at(bundle, "with.path");
    let saved = plan.value_of("--out").unwrap_or_else(|| {
        workflow.fail(
            PROPERTY,
            "plan-prod's `deployer plan` saves no plan (--out)",
        )
    });
    workflow.ensure(
        plan.value_of("--env") == Some("$DEPLOYER_ENV")
            && plan.value_of("--var") == Some("architecture=$LAMBDA_ARCHITECTURE")
            && plan.value_of("--artifact") == Some(format!("{bundle}/bootstrap.zip").as_str())
            && bundle_step < plan.step,
        PROPERTY,
        format_args!(
            "`{}` must name --env, the architecture and the downloaded zip",
            plan.line()
        ),
    );
    workflow.ensure(
        workflow.steps(JOB)[plan.step]["run"]
            .as_str()
            .is_some_and(|script| script.contains(">> \"$GITHUB_STEP_SUMMARY\"")),
        PROPERTY,
        "plan-prod must show the plan in the run's summary ($GITHUB_STEP_SUMMARY)",
    );
    let (upload, upload_step) = workflow.step_using(JOB, "actions/upload-artifact");
    let artifact = workflow.text_at(upload_step, "with.name");
    // Both jobs name the runner's temporary directory, as a context or a variable.
    let directory = |path: &str| {
        path.replace("${{ runner.temp }}", "$RUNNER_TEMP")
            .trim_end_matches('/')
            .to_owned()
    };
    let uploaded = directory(workflow.text_at(upload_step, "with.path"));
    workflow.ensure(
        plan.step < upload && saved.starts_with(&format!("{uploaded}/")),
        PROPERTY,
        format_args!("the saved plan {saved} must be in the uploaded {uploaded}/, after the plan"),
    );

    // The deploy matrix waits for the plan; it runs when plan-prod succeeded or
    // was skipped (a manual run of dev or stage), never after it failed.
    let deploy = workflow.job("deploy");
    workflow.ensure(
        needs_of(deploy).iter().any(|need| need == JOB),
        PROPERTY,
        "the deploy job must need plan-prod",
    );
    let deploys_after = |plan_result: &str| {
        let condition = workflow.text_at(deploy, "if");
        let value = |name: &str| match name {
            "needs.build.result" => Some("success".to_owned()),
            "needs.plan-prod.result" => Some(plan_result.to_owned()),
            _ => None,
        };
        evaluate(condition, &value).unwrap_or_else(|error| {
            workflow.fail("conditions", format_args!("`if: {condition}`: {error}"))
        })
    };
    workflow.ensure(
        deploys_after("success") && deploys_after("skipped") && !deploys_after("failure"),
        PROPERTY,
        "the deploy job must run after plan-prod succeeded or was skipped, and never after it failed",
    );
    let own_plan = workflow.command("deploy", &["deployer", "plan"]);
    let plans_in = environments_where(
        workflow,
        condition(&workflow.steps("deploy")[own_plan.step]),
        true,
    );
    workflow.ensure(
        plans_in == ["dev", "stage"],
        PROPERTY,
        format_args!("the deploy job plans in {plans_in:?}: prod must apply the plan its reviewers read, not plan again"),
    );
    let downloads: Vec<(usize, &Yaml)> = workflow
        .steps("deploy")
        .iter()
        .enumerate()
        .filter(|(_, step)| {
            action_of(step) == Some("actions/download-artifact")
                && step["with"]["name"].as_str() == Some(artifact)
        })
        .collect();
    let [(download, download_step)] = downloads.as_slice() else {
        workflow.fail(
            PROPERTY,
            format_args!(
                "the deploy job downloads the artifact {artifact} {} times, expected once",
                downloads.len()
            ),
        )
    };
    for elsewhere in ["run-id", "github-token", "repository"] {
        workflow.ensure(
            download_step["with"][elsewhere].is_badvalue(),
            PROPERTY,
            format_args!("the download of {artifact} names `{elsewhere}`: the plan applied must be this run's"),
        );
    }
    let downloaded_in = environments_where(workflow, condition(download_step), true);
    workflow.ensure(
        downloaded_in == ["prod"],
        PROPERTY,
        format_args!("{artifact} is downloaded in {downloaded_in:?}, expected in prod only"),
    );
    let apply = workflow.command("deploy", &["deployer", "apply"]);
    let into = directory(workflow.text_at(download_step, "with.path"));
    workflow.ensure(
        into == uploaded
            && apply.words.get(2).map(String::as_str) == Some(saved)
            && *download < apply.step
            && environments_where(
                workflow,
                condition(&workflow.steps("deploy")[apply.step]),
                true,
            ) == ENVIRONMENTS,
        PROPERTY,
        format_args!(
            "prod's `deployer apply` must apply {saved}, downloaded into {uploaded}/ before it"
        ),
    );
}

fn check_destroy(workflow: &Workflow) {
    check_triggers(workflow, &["workflow_dispatch"]);
    check_environment_choice(workflow);
    let input = workflow.at("on.workflow_dispatch.inputs.destroy_bootstrap");
    workflow.ensure(
        workflow.text_at(input, "type") == "boolean"
            && input["default"].as_bool() == Some(false)
            && workflow.text_at(input, "description").contains("DANGEROUS"),
        "destroy_bootstrap input",
        "destroy_bootstrap must be a boolean, false by default, described as DANGEROUS",
    );

    let environment = workflow.job("environment");
    workflow.ensure(
        environment_of(environment) == Some("${{ inputs.environment }}")
            && workflow.env_value(environment, "DEPLOYER_ENV").as_deref()
                == Some("${{ inputs.environment }}"),
        "environment",
        "the destroy job runs in the chosen GitHub environment, with DEPLOYER_ENV set to it",
    );
    let destroy = workflow.command("environment", &["deployer", "destroy"]);
    workflow.ensure(
        destroy.value_of("--env") == Some("$DEPLOYER_ENV") && !destroy.has("--bootstrap"),
        "destroy",
        format_args!("`{}` must destroy the chosen environment", destroy.line()),
    );

    let bootstrap = workflow.job("bootstrap");
    let needs = &bootstrap["needs"];
    workflow.ensure(
        condition(bootstrap) == Some("inputs.destroy_bootstrap")
            && (needs.as_str() == Some("environment")
                || needs
                    .as_vec()
                    .is_some_and(|list| list.iter().any(|n| n.as_str() == Some("environment")))),
        "destroy_bootstrap",
        "the bootstrap stack goes only when destroy_bootstrap is set, after the environment",
    );
    let destroy_bootstrap = workflow.command("bootstrap", &["deployer", "destroy", "--bootstrap"]);
    workflow.ensure(
        !destroy_bootstrap.has("--force")
            && workflow.env_value(bootstrap, "DEPLOYER_ENV").is_none()
            && workflow.env_value(&workflow.yaml, "DEPLOYER_ENV").is_none(),
        "destroy_bootstrap",
        "`deployer destroy --bootstrap` runs without --force and without DEPLOYER_ENV",
    );
    let everywhere = workflow.commands_of("deployer");
    let ungated = everywhere
        .iter()
        .any(|(job, command)| command.has("--bootstrap") && job != "bootstrap");
    workflow.ensure(
        !ungated,
        "destroy_bootstrap",
        "only the gated job may destroy the bootstrap stack",
    );
}

/// preview.yml: `pr-<number>` applied while a pull request of this repository
/// is labeled `preview`, smoke-tested read-only, its URL in the summary and in
/// one marked comment; destroyed when it closes or loses the label; swept
/// nightly. Its pull-request jobs run in no GitHub environment (the preview
/// role trusts `repo:R:pull_request`, which a job in an environment is not),
/// and its sweeper in exactly the one the role trusts.
fn check_preview(workflow: &Workflow) {
    check_triggers(workflow, &["pull_request", "schedule", "workflow_dispatch"]);
    let mut types = workflow.list_at(&workflow.yaml, "on.pull_request.types");
    types.sort();
    workflow.ensure(
        types
            == [
                "closed",
                "labeled",
                "opened",
                "reopened",
                "synchronize",
                "unlabeled",
            ],
        "triggers",
        format_args!("pull_request types are {types:?}"),
    );
    workflow.ensure(
        workflow
            .at("on.schedule")
            .as_vec()
            .is_some_and(|crons| !crons.is_empty()),
        "triggers",
        "the sweeper has no schedule",
    );
    let this_repository = "github.event.pull_request.head.repo.full_name == github.repository";
    let build = condition(workflow.job("build")).unwrap_or_default();
    workflow.ensure(
        build.contains("contains(github.event.pull_request.labels.*.name, 'preview')")
            && build.contains("github.event.action != 'closed'")
            && build.contains(this_repository),
        "preview label",
        "the build runs only for an open pull request of this repository labeled `preview`",
    );
    let destroy = condition(workflow.job("destroy")).unwrap_or_default();
    workflow.ensure(
        destroy.contains("github.event.action == 'closed'")
            && destroy.contains("github.event.label.name == 'preview'")
            && destroy.contains(this_repository),
        "preview destroy",
        "the preview is destroyed when its pull request closes or loses the label",
    );
    let preview_env = "pr-${{ github.event.pull_request.number }}";
    for job in ["apply", "destroy"] {
        let node = workflow.job(job);
        workflow.ensure(
            workflow.env_value(node, "DEPLOYER_ENV").as_deref() == Some(preview_env),
            "preview environment",
            format_args!("job `{job}` must set DEPLOYER_ENV to {preview_env}"),
        );
        workflow.ensure(
            workflow.text_at(node, "concurrency.group")
                == "preview-pr-${{ github.event.pull_request.number }}"
                && node["concurrency"]["cancel-in-progress"].as_bool() == Some(false),
            "preview concurrency",
            format_args!("job `{job}` must queue in preview-pr-<number>, never cancelled"),
        );
    }
    for (id, job) in workflow.jobs() {
        let expected = (id == "sweep").then_some(deployer::stacks::preview::SWEEP_ENVIRONMENT);
        workflow.ensure(
            environment_of(job) == expected,
            "preview environments",
            format_args!(
                "job `{id}` runs in {:?}, expected {expected:?}",
                environment_of(job)
            ),
        );
    }
    let apply = workflow.command("apply", &["deployer", "apply"]);
    workflow.ensure(
        apply.value_of("--env") == Some("$DEPLOYER_ENV"),
        "preview apply",
        format_args!("`{}` must apply $DEPLOYER_ENV", apply.line()),
    );
    let smoke = load_tests(workflow, "apply");
    workflow.ensure(
        smoke.len() == 1 && smoke[0].scenario == "smoke" && !smoke[0].writes,
        "preview smoke test",
        "the preview gets exactly the read-only smoke test",
    );
    let comment = workflow.steps("comment");
    workflow.ensure(
        comment
            .iter()
            .filter_map(|step| step["run"].as_str())
            .any(|script| {
                // The body starts with the marker, the comment found by it is updated.
                script.contains(&format!("'{PREVIEW_MARKER}"))
                    && script.contains(&format!("startswith(\"{PREVIEW_MARKER}\")"))
                    && script.contains("--method PATCH")
            }),
        "preview comment",
        format_args!("the comment job updates the one comment marked {PREVIEW_MARKER}"),
    );
    workflow.ensure(
        workflow
            .steps("apply")
            .iter()
            .filter_map(|step| step["run"].as_str())
            .any(|script| {
                script.contains("GITHUB_STEP_SUMMARY") && script.contains("api_base_url")
            }),
        "preview summary",
        "the apply job writes the preview's URL to the run's summary",
    );
    let destroy = workflow.command("destroy", &["deployer", "destroy"]);
    workflow.ensure(
        destroy.value_of("--env") == Some("$DEPLOYER_ENV"),
        "preview destroy",
        format_args!("`{}` must destroy $DEPLOYER_ENV", destroy.line()),
    );
    let list = workflow.command("sweep", &["deployer", "environments", "list"]);
    workflow.ensure(
        list.has("--previews") && list.has("--json"),
        "preview sweep",
        "the sweeper lists the previews as JSON",
    );
    workflow.command("sweep", &["deployer", "destroy"]);
}

// ---- tests on the real workflows ----

/// The variables a shell script reads: `$NAME` and `${NAME...}`.
fn read_variables(script: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = script;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name = rest.strip_prefix('{').unwrap_or(rest);
        let end = name
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(name.len());
        if end > 0 && !name.starts_with(|c: char| c.is_ascii_digit()) {
            names.push(name[..end].to_owned());
        }
    }
    names
}

/// A checkout for a step: `files` (path, content) written in a new folder.
fn checkout(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a checkout");
    for (path, content) in files {
        let path = dir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a folder");
        }
        std::fs::write(path, content).expect("a file");
    }
    dir
}

fn succeeded(workflow: &Workflow, property: &str, ran: &std::process::Output) {
    workflow.ensure(
        ran.status.success(),
        property,
        format_args!(
            "the step failed: {}{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        ),
    );
}

fn by(comments: &[Value], login: &str) -> Vec<Value> {
    comments
        .iter()
        .filter(|comment| comment["user"]["login"] == login)
        .cloned()
        .collect()
}

const BOT: &str = "github-actions[bot]";

/// pull-request.yml's comment step, run on two pushes of a pull request where
/// a reviewer quoted the marker: one comment of the bot, updated in place
/// with the last plan; the reviewer's comment left alone.
fn check_plan_comment(workflow: &Workflow) {
    let property = "plan comment";
    let gh = FakeGh::new(&[(12, "OPEN")]);
    gh.comment(
        12,
        "a-reviewer",
        "<!-- deployer-plan --> as a reviewer quoted it",
    );
    for push in ["first push", "second push"] {
        let body = format!("<!-- deployer-plan -->\n{push}");
        let dir = checkout(&[("comment/comment.md", &body)]);
        let ran = workflow.run_step(
            &gh,
            ("comment", "Create or update the comment"),
            dir.path(),
            &[
                ("GH_TOKEN", "token"),
                ("REPOSITORY", REPOSITORY),
                ("PULL_REQUEST", "12"),
            ],
        );
        succeeded(workflow, property, &ran);
    }
    let comments = gh.comments(12);
    let ours = by(&comments, BOT);
    workflow.ensure(
        ours.len() == 1 && ours[0]["body"] == "<!-- deployer-plan -->\nsecond push",
        property,
        format_args!("one comment of the bot, with the last push's plan: {comments:?}"),
    );
    workflow.ensure(
        by(&comments, "a-reviewer").len() == 1,
        property,
        format_args!("the reviewer's comment is left alone: {comments:?}"),
    );
}

/// preview.yml's comment, written on two applies of a preview (a new commit,
/// a new URL): one comment of the bot with the last URL; a reviewer's comment
/// quoting the marker is not taken for it.
fn check_preview_comment(workflow: &Workflow) {
    let property = "preview comment";
    let gh = FakeGh::new(&[(7, "OPEN")]);
    gh.comment(
        7,
        "a-reviewer",
        "<!-- deployer-preview --> as a reviewer quoted it",
    );
    for (sha, url) in [
        (
            "aaa111",
            "https://one.execute-api.us-east-1.amazonaws.com/pr-7",
        ),
        (
            "bbb222",
            "https://two.execute-api.us-east-1.amazonaws.com/pr-7",
        ),
    ] {
        let dir = checkout(&[]);
        let ran = workflow.run_step(
            &gh,
            ("comment", "Write or update the comment"),
            dir.path(),
            &[
                ("GH_TOKEN", "token"),
                ("REPOSITORY", REPOSITORY),
                ("NUMBER", "7"),
                ("API_BASE_URL", url),
                ("SHA", sha),
            ],
        );
        succeeded(workflow, property, &ran);
    }
    let comments = gh.comments(7);
    let ours = by(&comments, BOT);
    let body = ours
        .first()
        .and_then(|comment| comment["body"].as_str())
        .unwrap_or_default();
    workflow.ensure(
        ours.len() == 1
            && body.starts_with(PREVIEW_MARKER)
            && body.contains("https://two.execute-api")
            && body.contains("bbb222")
            && !body.contains("https://one."),
        property,
        format_args!("one comment of the bot, with the last URL: {comments:?}"),
    );
}

/// drift.yml's issue step, night after night: drift in dev opens "Drift in
/// dev" (labelled `drift`), drift in stage its own, dev's lasting drift
/// updates its issue, its end closes it, and drift coming back opens a new one.
fn check_drift_issue(workflow: &Workflow) {
    let property = "drift issue";
    let gh = FakeGh::new(&[]);
    let night = |environment: &str, drifted: bool, report: &str| {
        let dir = checkout(&[
            ("drift/drifted", if drifted { "true\n" } else { "false\n" }),
            ("drift/issue.md", report),
        ]);
        let ran = workflow.run_step(
            &gh,
            ("issue", "Open, update or close the issue"),
            dir.path(),
            &[
                ("GH_TOKEN", "token"),
                ("REPOSITORY", REPOSITORY),
                ("DEPLOYER_ENV", environment),
            ],
        );
        succeeded(workflow, property, &ran);
        gh.state()["issues"].as_array().cloned().unwrap_or_default()
    };
    let summary = |issues: &[Value]| -> Vec<(String, String, String)> {
        issues
            .iter()
            .map(|issue| {
                let text = |field: &str| issue[field].as_str().unwrap_or_default().to_owned();
                (text("title"), text("state"), text("body"))
            })
            .collect()
    };
    let owned = |rows: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        rows.iter()
            .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
            .collect()
    };

    let issues = night("dev", true, "dev: a tag removed");
    workflow.ensure(
        summary(&issues) == owned(&[("Drift in dev", "OPEN", "dev: a tag removed")])
            && issues[0]["labels"] == serde_json::json!(["drift"]),
        property,
        format_args!("drift opens one labelled issue: {issues:?}"),
    );
    night("stage", true, "stage: memory changed");
    let issues = night("dev", true, "dev: a tag removed, timeout changed");
    workflow.ensure(
        summary(&issues)
            == owned(&[
                (
                    "Drift in dev",
                    "OPEN",
                    "dev: a tag removed, timeout changed",
                ),
                ("Drift in stage", "OPEN", "stage: memory changed"),
            ]),
        property,
        format_args!("lasting drift updates its environment's issue: {issues:?}"),
    );
    let issues = night("dev", false, "");
    let issues = summary(&issues);
    workflow.ensure(
        issues[0].1 == "CLOSED" && issues[1].1 == "OPEN",
        property,
        format_args!("the end of dev's drift closes its issue only: {issues:?}"),
    );
    let closed_comments = gh.state()["issues"][0]["comments"].clone();
    workflow.ensure(
        closed_comments
            .as_array()
            .is_some_and(|comments| comments.len() == 1),
        property,
        format_args!("closed with one comment: {closed_comments}"),
    );
    night("dev", false, "");
    let issues = night("dev", true, "dev: drifted again");
    workflow.ensure(
        summary(&issues)
            == owned(&[
                (
                    "Drift in dev",
                    "CLOSED",
                    "dev: a tag removed, timeout changed",
                ),
                ("Drift in stage", "OPEN", "stage: memory changed"),
                ("Drift in dev", "OPEN", "dev: drifted again"),
            ]),
        property,
        format_args!("drift coming back opens a new issue: {issues:?}"),
    );
}

fn all_workflows() -> Vec<Workflow> {
    let mut files: Vec<String> = std::fs::read_dir(workflows_dir())
        .expect("reading .github/workflows")
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yml") || name.ends_with(".yaml"))
        .collect();
    files.sort();
    files.iter().map(|file| Workflow::load(file)).collect()
}

#[test]
fn the_workflows_are_there() {
    let files: Vec<String> = all_workflows().into_iter().map(|w| w.file).collect();
    assert_eq!(files, WORKFLOWS, "the workflows in .github/workflows");
}

#[test]
fn every_workflow_is_least_privileged_pinned_and_keyless() {
    for workflow in all_workflows() {
        check_common(&workflow);
    }
}

#[test]
fn each_action_is_pinned_to_one_commit_everywhere() {
    let mut pins: BTreeMap<String, (String, String)> = BTreeMap::new();
    for workflow in all_workflows() {
        for value in workflow.uses() {
            let Some((action, commit)) = value.split_once('@') else {
                continue;
            };
            let (first, other) = pins
                .entry(action.to_owned())
                .or_insert_with(|| (commit.to_owned(), workflow.file.clone()));
            assert_eq!(
                first.as_str(),
                commit,
                "{}: {action} is pinned to {commit}, but to {first} in {other}",
                workflow.file
            );
        }
    }
    assert!(
        pins.contains_key(AWS_CREDENTIALS),
        "no workflow configures AWS credentials"
    );
}

#[test]
fn ci_runs_fmt_clippy_the_linters_and_the_test_command() {
    check_ci(&Workflow::load("ci.yml"));
}

#[test]
fn the_test_command_runs_the_workflow_linters() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let test = std::fs::read_to_string(root.join("scripts/test")).expect("reading scripts/test");
    let linters = test
        .find("scripts/lint-workflows")
        .expect("scripts/test runs scripts/lint-workflows");
    let tests = test
        .find("cargo test")
        .expect("scripts/test runs cargo test");
    assert!(
        linters < tests,
        "scripts/test lints the workflows before cargo test"
    );
    let lint = std::fs::read_to_string(root.join("scripts/lint-workflows"))
        .expect("reading scripts/lint-workflows");
    for tool in ["actionlint", "zizmor", "--offline", "lint-requirements.txt"] {
        assert!(
            lint.contains(tool),
            "scripts/lint-workflows does not mention {tool}"
        );
    }
}

#[test]
fn previews_come_and_go_with_their_pull_requests_labels() {
    check_preview(&Workflow::load("preview.yml"));
}

#[test]
fn the_preview_role_trusts_exactly_what_preview_yml_runs_as() {
    let settings = deployer::config::Settings {
        github_repository: Some("owner/repo".into()),
        ..deployer::config::Settings::default()
    };
    assert_eq!(
        deployer::stacks::preview::preview_subjects(&settings),
        [
            "repo:owner/repo:pull_request".to_owned(),
            format!(
                "repo:owner/repo:environment:{}",
                deployer::stacks::preview::SWEEP_ENVIRONMENT
            )
        ],
        "preview.yml's pull-request jobs run in no GitHub environment, its sweeper in one"
    );
}

#[test]
#[should_panic(expected = "preview.yml: preview label")]
fn a_preview_without_the_label_fails() {
    check_preview(&Workflow::mutated(
        "preview.yml",
        "contains(github.event.pull_request.labels.*.name, 'preview') &&",
        "",
    ));
}

#[test]
#[should_panic(expected = "preview.yml: preview environments: job `apply`")]
fn a_preview_job_in_a_github_environment_fails() {
    check_preview(&Workflow::mutated(
        "preview.yml",
        "    needs: build\n",
        "    needs: build\n    environment: dev\n",
    ));
}

#[test]
#[should_panic(expected = "preview.yml: role-to-assume: job `apply` assumes")]
fn a_preview_with_the_deploy_role_fails() {
    check_oidc_credentials(&Workflow::mutated(
        "preview.yml",
        "role-to-assume: ${{ secrets.AWS_PREVIEW_ROLE_TO_ASSUME }}",
        "role-to-assume: ${{ secrets.AWS_ROLE_TO_ASSUME }}",
    ));
}

#[test]
#[should_panic(expected = "preview.yml: preview comment")]
fn a_preview_comment_without_its_marker_fails() {
    check_preview(&Workflow::mutated(
        "preview.yml",
        "'<!-- deployer-preview -->\\n",
        "'\\n",
    ));
}

#[test]
#[should_panic(expected = "preview.yml: preview smoke test")]
fn a_preview_smoke_test_that_writes_fails() {
    check_preview(&Workflow::mutated(
        "preview.yml",
        "loadtest smoke --read-only",
        "loadtest smoke",
    ));
}

#[test]
#[should_panic(expected = "preview.yml: deployer command line")]
fn an_unparsable_sweeper_command_fails() {
    check_deployer_commands_parse(&Workflow::mutated(
        "preview.yml",
        "deployer environments list --previews",
        "deployer environments list --pr-only",
    ));
}

#[test]
fn bootstrap_runs_the_deployer_and_exposes_its_outputs() {
    check_bootstrap(&Workflow::load("bootstrap.yml"));
}

#[test]
fn deploy_runs_on_main_and_on_demand() {
    check_deploy_triggers(&Workflow::load("deploy.yml"));
}

#[test]
fn deploy_goes_through_dev_stage_prod_in_their_environments() {
    check_deploy_matrix(&Workflow::load("deploy.yml"));
}

#[test]
fn deploys_and_destroys_of_one_environment_never_overlap() {
    check_concurrency_per_environment(
        &Workflow::load("deploy.yml"),
        "deploy",
        "matrix.environment",
    );
    check_concurrency_per_environment(
        &Workflow::load("destroy.yml"),
        "environment",
        "inputs.environment",
    );
}

#[test]
fn deploy_builds_one_zip_for_the_configured_architecture() {
    check_deploy_build(&Workflow::load("deploy.yml"));
}

#[test]
fn deploy_plans_applies_smoke_tests_and_load_tests() {
    check_deploy_steps(&Workflow::load("deploy.yml"));
}

#[test]
fn destroy_takes_the_bootstrap_stack_only_when_asked() {
    check_destroy(&Workflow::load("destroy.yml"));
}

#[test]
fn the_write_scenarios_run_exactly_where_deployer_toml_allows_deleting_tables() {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deployer.toml");
    let allowing: Vec<&str> = ENVIRONMENTS
        .into_iter()
        .filter(|environment| {
            deployer::config::Config::resolve(
                &deployer::config::ConfigSources {
                    path: Some(&config),
                    vars: &[],
                    region: None,
                    ambient_region: None,
                },
                Some(*environment),
            )
            .unwrap_or_else(|error| panic!("deployer.toml for {environment}: {error}"))
            .settings
            .allow_table_delete
        })
        .collect();
    assert_eq!(
        allowing, WRITE_ENVIRONMENTS,
        "deployer.toml allows deleting tables exactly where deploy.yml runs the scenarios that write"
    );
}

#[test]
fn conditions_are_evaluated_as_github_does() {
    let value = |environment: &'static str| {
        move |name: &str| match name {
            "matrix.environment" => Some(environment.to_owned()),
            "vars.RUN_LOAD_TESTS" => Some(String::new()),
            _ => None,
        }
    };
    let runs = |expression: &str, environment: &'static str| {
        evaluate(expression, &value(environment)).expect("understood")
    };
    let both = "vars.RUN_LOAD_TESTS != 'false' && (matrix.environment == 'dev' || matrix.environment == 'stage')";
    assert!(runs(both, "dev") && runs(both, "stage") && !runs(both, "prod"));
    // && binds tighter than ||: without the parentheses, stage ignores the gate.
    assert!(runs("matrix.environment != 'prod'", "stage"));
    assert!(
        !runs("!(matrix.environment == 'DEV')", "dev"),
        "case-insensitive"
    );
    assert!(runs("success() && matrix.environment == 'prod'", "prod"));
    assert!(evaluate("github.ref == 'main'", &value("dev")).is_err());
    assert!(evaluate("matrix.environment", &value("dev")).is_err());
    assert!(evaluate("(matrix.environment == 'dev'", &value("dev")).is_err());
}

#[test]
fn the_command_line_reader_follows_quotes_and_substitutions() {
    let commands = shell_commands(
        "a=\"$(deployer output --env \"$E\" api_base_url)\"\n\
         echo 'deployer apply' >> \"$GITHUB_OUTPUT\" # deployer destroy\n\
         deployer plan \\\n  --env dev; cargo build -p deployer && loadtest smoke\n\
         case \"$A\" in\n  arm64) cargo lambda build --arm64 ;;\nesac",
    );
    let lines: Vec<String> = commands.iter().map(|words| words.join(" ")).collect();
    assert_eq!(
        lines,
        [
            "deployer output --env $E api_base_url",
            "a=$(…)",
            "echo deployer apply",
            "deployer plan --env dev",
            "cargo build -p deployer",
            "loadtest smoke",
            "case $A in",
            "cargo lambda build --arm64",
            "esac",
        ]
    );
    assert_eq!(
        with_placeholders("architecture=$ARCH"),
        "architecture=placeholder"
    );
    assert_eq!(
        with_placeholders("${DIR}/$(date).json"),
        "placeholder/placeholder.json"
    );
}

// ---- each check fails when its property is broken ----

#[test]
#[should_panic(expected = "deploy.yml: pinned actions: `actions/checkout@v6` is not pinned")]
fn a_tag_instead_of_a_commit_fails() {
    check_pinned_actions(&Workflow::mutated(
        "deploy.yml",
        "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2",
        "actions/checkout@v6",
    ));
}

#[test]
#[should_panic(expected = "lacks its version comment")]
fn a_pin_without_its_version_comment_fails() {
    check_pinned_actions(&Workflow::mutated("ci.yml", " # v6.1.0", ""));
}

#[test]
#[should_panic(expected = "deploy.yml: no access keys: mentions aws-access-key-id")]
fn an_access_key_fails() {
    check_no_access_keys(&Workflow::mutated(
        "deploy.yml",
        "role-to-assume: ${{ secrets.AWS_ROLE_TO_ASSUME }}",
        "aws-access-key-id: ${{ secrets.KEY }}\n          role-to-assume: ${{ secrets.AWS_ROLE_TO_ASSUME }}",
    ));
}

#[test]
#[should_panic(expected = "destroy.yml: role-to-assume: job `environment` assumes")]
fn another_role_fails() {
    check_oidc_credentials(&Workflow::mutated(
        "destroy.yml",
        "secrets.AWS_ROLE_TO_ASSUME",
        "secrets.AWS_BOOTSTRAP_ROLE_TO_ASSUME",
    ));
}

#[test]
#[should_panic(expected = "deploy.yml: least permissions: job `plan-prod` is granted")]
fn a_write_permission_fails() {
    check_least_permissions(&Workflow::mutated(
        "deploy.yml",
        "contents: read # to check out the repository (deployer.toml)",
        "contents: write",
    ));
}

#[test]
#[should_panic(expected = "ci.yml: persist-credentials")]
fn a_checkout_keeping_its_token_fails() {
    check_checkouts_keep_no_credentials(&Workflow::mutated(
        "ci.yml",
        "persist-credentials: false",
        "persist-credentials: true",
    ));
}

#[test]
#[should_panic(expected = "ci.yml: no expressions in run scripts")]
fn an_expression_in_a_script_fails() {
    check_no_expressions_in_scripts(&Workflow::mutated(
        "ci.yml",
        "run: scripts/test",
        "run: scripts/test ${{ github.head_ref }}",
    ));
}

#[test]
#[should_panic(expected = "does not pass --region")]
fn a_deployer_command_without_an_explicit_region_fails() {
    check_deployer_commands_parse(&Workflow::mutated(
        "destroy.yml",
        "--auto-approve --region \"$AWS_REGION\"",
        "--auto-approve",
    ));
}

#[test]
fn the_deploy_role_trusts_exactly_the_environments_the_workflows_deploy_from() {
    assert_eq!(
        deployer::stacks::bootstrap::DEPLOY_ENVIRONMENTS,
        ENVIRONMENTS,
        "the deploy role's default OIDC subjects are the GitHub environments of deploy.yml and destroy.yml"
    );
}

#[test]
#[should_panic(expected = "deploy.yml: matrix: deploys")]
fn environments_out_of_order_fail() {
    check_deploy_matrix(&Workflow::mutated(
        "deploy.yml",
        r#"'["dev", "stage", "prod"]'"#,
        r#"'["dev", "prod", "stage"]'"#,
    ));
}

#[test]
#[should_panic(expected = "deploy.yml: concurrency")]
fn cancelling_a_deploy_fails() {
    check_concurrency_per_environment(
        &Workflow::mutated(
            "deploy.yml",
            "group: deploy-${{ matrix.environment }}\n      cancel-in-progress: false",
            "group: deploy-${{ matrix.environment }}\n      cancel-in-progress: true",
        ),
        "deploy",
        "matrix.environment",
    );
}

#[test]
#[should_panic(expected = "deploy.yml: saved plan: `deployer apply` must apply the file")]
fn an_apply_that_plans_again_instead_of_applying_the_saved_plan_fails() {
    check_deploy_steps(&Workflow::mutated(
        "deploy.yml",
        r#"run: deployer apply "$RUNNER_TEMP/saved-plan/deploy.plan" --env"#,
        "run: deployer apply --env",
    ));
}

#[test]
#[should_panic(
    expected = "deploy.yml: saved plan: the plan step must show the plan in the run's summary"
)]
fn a_plan_kept_out_of_the_summary_fails() {
    check_deploy_steps(&Workflow::mutated(
        "deploy.yml",
        concat!(
            "echo \"### deployer plan for $DEPLOYER_ENV\"\n",
            "            echo '```'\n",
            "            cat \"$RUNNER_TEMP/saved-plan/plan.txt\"\n",
            "            echo '```'\n",
            "          } >> \"$GITHUB_STEP_SUMMARY\""
        ),
        r#"} >> "$RUNNER_TEMP/summary.md""#,
    ));
}

#[test]
#[should_panic(expected = "deploy.yml: load tests")]
fn an_ungated_load_test_fails() {
    check_deploy_steps(&Workflow::mutated(
        "deploy.yml",
        "if: vars.RUN_LOAD_TESTS != 'false'",
        "if: success()",
    ));
}

#[test]
#[should_panic(
    expected = "deploy.yml: write scenarios: `loadtest single-table --json $SUMMARIES/single-table.json` runs in [\"dev\", \"stage\", \"prod\"]"
)]
fn a_load_scenario_in_prod_fails() {
    check_deploy_steps(&Workflow::mutated(
        "deploy.yml",
        "if: vars.RUN_LOAD_TESTS != 'false' && (matrix.environment == 'dev' || matrix.environment == 'stage')",
        "if: vars.RUN_LOAD_TESTS != 'false'",
    ));
}

#[test]
#[should_panic(
    expected = "deploy.yml: write scenarios: `loadtest smoke --json $SUMMARIES/smoke.json` runs in [\"stage\", \"prod\"]"
)]
fn a_writing_smoke_test_in_prod_fails() {
    check_deploy_steps(&Workflow::mutated(
        "deploy.yml",
        "if: matrix.environment == 'dev' || matrix.environment == 'stage'",
        "if: matrix.environment != 'dev'",
    ));
}

#[test]
#[should_panic(
    expected = "deploy.yml: smoke test: expected one `loadtest smoke --read-only`, found 0"
)]
fn a_smoke_test_that_writes_everywhere_fails() {
    check_deploy_steps(&Workflow::mutated(
        "deploy.yml",
        "loadtest smoke --read-only",
        "loadtest smoke",
    ));
}

#[test]
#[should_panic(expected = "passes --allow-writes")]
fn allowing_writes_in_the_workflow_fails() {
    check_deploy_steps(&Workflow::mutated(
        "deploy.yml",
        "loadtest multi-table --json",
        "loadtest multi-table --allow-writes --json",
    ));
}

#[test]
#[should_panic(expected = "does not parse")]
fn an_unknown_deployer_flag_fails() {
    check_deployer_commands_parse(&Workflow::mutated(
        "deploy.yml",
        "--auto-approve --artifact",
        "--yes --artifact",
    ));
}

#[test]
#[should_panic(expected = "without --auto-approve")]
fn an_unapproved_destroy_fails() {
    check_deployer_commands_parse(&Workflow::mutated(
        "destroy.yml",
        "deployer destroy --env \"$DEPLOYER_ENV\" --auto-approve",
        "deployer destroy --env \"$DEPLOYER_ENV\"",
    ));
}

#[test]
#[should_panic(expected = "destroy.yml: destroy_bootstrap")]
fn an_ungated_bootstrap_destroy_fails() {
    check_destroy(&Workflow::mutated(
        "destroy.yml",
        "if: inputs.destroy_bootstrap",
        "if: always()",
    ));
}

#[test]
#[should_panic(expected = "bootstrap.yml: outputs: workflow_call output lock_table")]
fn a_bootstrap_output_from_elsewhere_fails() {
    check_bootstrap(&Workflow::mutated(
        "bootstrap.yml",
        "value: ${{ jobs.bootstrap.outputs.lock_table }}",
        "value: ${{ jobs.bootstrap.outputs.state_bucket }}",
    ));
}

#[test]
#[should_panic(expected = "ci.yml: triggers: `on` is [\"push\"]")]
fn ci_without_pull_requests_fails() {
    check_ci(&Workflow::mutated("ci.yml", "  pull_request:\n", ""));
}

#[test]
#[should_panic(expected = "ci.yml: commands: no step of job `checks` runs `scripts/test`")]
fn ci_without_the_test_command_fails() {
    check_ci(&Workflow::mutated(
        "ci.yml",
        "run: scripts/test",
        "run: cargo test",
    ));
}

#[test]
#[should_panic(expected = "deploy.yml: triggers: a push touching state/** does not deploy")]
fn a_deploy_blind_to_state_fails() {
    check_deploy_triggers(&Workflow::mutated(
        "deploy.yml",
        "      - \"state/**\"\n",
        "",
    ));
}

#[test]
#[should_panic(expected = "deploy.yml: environment: the deploy job runs in the GitHub environment")]
fn a_deploy_outside_its_environment_fails() {
    check_deploy_matrix(&Workflow::mutated(
        "deploy.yml",
        "name: ${{ matrix.environment }}",
        "name: dev",
    ));
}

#[test]
#[should_panic(
    expected = "deploy.yml: architecture: no `cargo lambda build --release --output-format zip --arm64`"
)]
fn a_build_ignoring_the_architecture_fails() {
    check_deploy_build(&Workflow::mutated(
        "deploy.yml",
        " --arm64 -p function",
        " -p function",
    ));
}

#[test]
#[should_panic(expected = "destroy.yml: destroy_bootstrap input")]
fn destroying_the_bootstrap_by_default_fails() {
    check_destroy(&Workflow::mutated(
        "destroy.yml",
        "default: false",
        "default: true",
    ));
}

#[test]
fn prod_applies_the_plan_its_reviewers_read_made_in_the_same_run() {
    check_prod_plan(&Workflow::load("deploy.yml"));
}

#[test]
#[should_panic(expected = "deploy.yml: prod plan: the deploy job plans in")]
fn a_prod_deploy_that_plans_again_after_approval_fails() {
    check_prod_plan(&Workflow::mutated(
        "deploy.yml",
        "        if: matrix.environment != 'prod'\n",
        "",
    ));
}

#[test]
#[should_panic(expected = "deploy.yml: prod plan: the download of saved-plan-prod names `run-id`")]
fn applying_a_plan_saved_by_another_run_fails() {
    check_prod_plan(&Workflow::mutated(
        "deploy.yml",
        "          name: saved-plan-prod\n          path: ${{ runner.temp }}/saved-plan\n",
        "          name: saved-plan-prod\n          path: ${{ runner.temp }}/saved-plan\n          run-id: ${{ vars.LAST_PROD_PLAN_RUN }}\n",
    ));
}

#[test]
#[should_panic(
    expected = "deploy.yml: prod plan: plan-prod must run in the GitHub environment `plan`"
)]
fn planning_prod_behind_its_approval_fails() {
    check_prod_plan(&Workflow::mutated(
        "deploy.yml",
        "    environment: plan\n",
        "    environment: prod\n",
    ));
}

#[test]
#[should_panic(
    expected = "deploy.yml: prod plan: the deploy job must run after plan-prod succeeded or was skipped"
)]
fn deploying_after_the_prod_plan_failed_fails() {
    check_prod_plan(&Workflow::mutated(
        "deploy.yml",
        "(needs.plan-prod.result == 'success' || needs.plan-prod.result == 'skipped')",
        "needs.plan-prod.result != 'cancelled'",
    ));
}

#[test]
#[should_panic(
    expected = "deploy.yml: role-to-assume: job `plan-prod` assumes ${{ secrets.AWS_ROLE_TO_ASSUME }}"
)]
fn a_plan_job_with_the_deploy_role_fails() {
    check_oidc_credentials(&Workflow::mutated(
        "deploy.yml",
        "secrets.AWS_PLAN_ROLE_TO_ASSUME",
        "secrets.AWS_ROLE_TO_ASSUME",
    ));
}

#[test]
fn the_plan_role_trusts_the_environment_the_prod_plan_runs_in() {
    let workflow = Workflow::load("deploy.yml");
    assert_eq!(
        environment_of(workflow.job("plan-prod")),
        Some(deployer::stacks::bootstrap::PLAN_ENVIRONMENT)
    );
    let settings = deployer::config::Settings {
        github_repository: Some("octo-org/playground".into()),
        ..deployer::config::Settings::default()
    };
    assert_eq!(
        deployer::stacks::bootstrap::plan_subjects(&settings),
        ["repo:octo-org/playground:environment:plan"]
    );
}

// ---- pull-request.yml: one plan comment per pull request ----

/// The `deployer plan-report` command of `job` rendering `format`.
fn plan_report(workflow: &Workflow, job: &str, format: &str) -> ShellCommand {
    workflow
        .commands(job)
        .into_iter()
        .find(|command| {
            command.starts_with(&["deployer", "plan-report"])
                && command.value_of("--format") == Some(format)
        })
        .unwrap_or_else(|| {
            workflow.fail(
                "plan report",
                format_args!(
                    "no step of job `{job}` runs `deployer plan-report --format {format}`"
                ),
            )
        })
}

/// `job` runs only for pull requests of this repository, never for a fork's.
fn check_not_for_forks(workflow: &Workflow, job: &str) {
    let condition = condition(workflow.job(job)).unwrap_or_default();
    workflow.ensure(
        condition.contains(NOT_A_FORK)
            && !condition.contains("||")
            && !condition.contains(&format!("!({NOT_A_FORK}")),
        "forks",
        format_args!("job `{job}` must run only when `{NOT_A_FORK}` (its `if:` is `{condition}`)"),
    );
}

fn check_pull_request(workflow: &Workflow) {
    const PROPERTY: &str = "pull request";
    check_triggers(workflow, &["pull_request"]);
    // Plans of dev, stage and prod with the plan role, none for forks.
    let plan = workflow.job("plan");
    workflow.ensure(
        environment_of(plan) == Some(deployer::stacks::bootstrap::PLAN_ENVIRONMENT),
        PROPERTY,
        "the plan job must run in the GitHub environment `plan`, whose jobs only the plan role trusts",
    );
    workflow.step_using("plan", AWS_CREDENTIALS);
    check_not_for_forks(workflow, "plan");
    check_not_for_forks(workflow, "comment");
    let (bundle_step, bundle) = workflow.step_using("plan", "actions/download-artifact");
    let bundle = workflow.text_at(bundle, "with.path");
    let plans: Vec<ShellCommand> = workflow
        .commands("plan")
        .into_iter()
        .filter(|command| command.starts_with(&["deployer", "plan"]))
        .collect();
    let planned: Vec<&str> = plans
        .iter()
        .filter_map(|command| command.value_of("--env"))
        .collect();
    workflow.ensure(
        planned == ENVIRONMENTS,
        PROPERTY,
        format_args!("the plan job plans {planned:?}, expected {ENVIRONMENTS:?} in order"),
    );
    for command in &plans {
        workflow.ensure(
            command.has("--json")
                && command.value_of("--artifact")
                    == Some(format!("{bundle}/bootstrap.zip").as_str())
                && command.value_of("--var") == Some("architecture=$LAMBDA_ARCHITECTURE")
                && bundle_step < command.step
                && !command.has("--detailed-exitcode"),
            PROPERTY,
            format_args!(
                "`{}` must print JSON for the report, with the downloaded zip and the architecture",
                command.line()
            ),
        );
    }
    // Every plan goes to the run's summary whole, and into the comment.
    let files: Vec<String> = ENVIRONMENTS
        .iter()
        .map(|environment| format!("$RUNNER_TEMP/plans/{environment}.json"))
        .collect();
    let summary = plan_report(workflow, "plan", "job-summary");
    let comment = plan_report(workflow, "plan", "github-comment");
    for report in [&summary, &comment] {
        workflow.ensure(
            files.iter().all(|file| report.has(file)),
            PROPERTY,
            format_args!("`{}` must report every plan ({files:?})", report.line()),
        );
    }
    workflow.ensure(
        workflow.steps("plan")[summary.step]["run"]
            .as_str()
            .is_some_and(|script| script.contains(">> \"$GITHUB_STEP_SUMMARY\"")),
        PROPERTY,
        "the job summary report must go to $GITHUB_STEP_SUMMARY",
    );
    workflow.ensure(
        comment.value_of("--details-url") == Some("$RUN_URL"),
        PROPERTY,
        "the comment must link cut plans to the run (--details-url \"$RUN_URL\")",
    );
    // One comment, found by the renderer's own marker, updated in place.
    let marker = deployer::commands::plan_report::markdown::COMMENT_MARKER;
    let steps = workflow.steps("comment");
    let script = steps
        .iter()
        .filter_map(|step| step["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    workflow.ensure(
        script.contains(marker) && script.contains("--method PATCH"),
        PROPERTY,
        format_args!("the comment job must update the comment marked {marker} in place"),
    );
    workflow.ensure(
        needs_of(workflow.job("comment")) == ["plan"],
        PROPERTY,
        "the comment job posts what the plan job rendered",
    );
}

#[test]
fn pull_requests_get_one_plan_comment_of_dev_stage_and_prod_and_forks_no_credentials() {
    check_pull_request(&Workflow::load("pull-request.yml"));
}

#[test]
fn the_pull_request_and_preview_builds_reuse_cargos_cache() {
    check_build_cache(&Workflow::load("pull-request.yml"), "build");
    check_build_cache(&Workflow::load("preview.yml"), "build");
}

#[test]
#[should_panic(expected = "pull-request.yml: build cache: job `build`'s cache key")]
fn a_build_cache_not_keyed_on_cargo_lock_fails() {
    check_build_cache(
        &Workflow::mutated("pull-request.yml", "-${{ hashFiles('Cargo.lock') }}", ""),
        "build",
    );
}

#[test]
#[should_panic(expected = "pull-request.yml: forks: job `plan` must run only when")]
fn planning_a_forks_pull_request_fails() {
    check_pull_request(&Workflow::mutated(
        "pull-request.yml",
        &format!("    if: {NOT_A_FORK}\n"),
        "",
    ));
}

#[test]
#[should_panic(expected = "pull-request.yml: pull request: the plan job plans [\"dev\", \"prod\"]")]
fn a_pull_request_leaving_out_stage_fails() {
    check_pull_request(&Workflow::mutated(
        "pull-request.yml",
        "          deployer plan --env stage --artifact bundle/bootstrap.zip --var \"architecture=$LAMBDA_ARCHITECTURE\" --region \"$AWS_REGION\" --json > \"$RUNNER_TEMP/plans/stage.json\" || failed=1\n",
        "",
    ));
}

#[test]
#[should_panic(
    expected = "pull-request.yml: pull request: the comment job must update the comment marked"
)]
fn a_new_comment_on_every_push_fails() {
    check_pull_request(&Workflow::mutated(
        "pull-request.yml",
        "--method PATCH",
        "--method POST",
    ));
}

#[test]
#[should_panic(expected = "pull-request.yml: least permissions: job `comment` is granted")]
fn a_comment_job_that_may_write_code_fails() {
    check_least_permissions(&Workflow::mutated(
        "pull-request.yml",
        "pull-requests: write # to create or update the one plan comment",
        "pull-requests: write\n      contents: write",
    ));
}

#[test]
#[should_panic(expected = "pull-request.yml: deployer command line: `deployer plan --env prod")]
fn a_pull_request_plan_without_its_region_fails() {
    check_deployer_commands_parse(&Workflow::mutated(
        "pull-request.yml",
        "--region \"$AWS_REGION\" --json > \"$RUNNER_TEMP/plans/prod.json\"",
        "--json > \"$RUNNER_TEMP/plans/prod.json\"",
    ));
}

// ---- drift.yml: a nightly drift check, one issue per environment ----

fn check_drift(workflow: &Workflow) {
    const PROPERTY: &str = "drift check";
    check_triggers(workflow, &["schedule", "workflow_dispatch"]);
    for job in ["check", "issue"] {
        let environments = workflow.list_at(workflow.job(job), "strategy.matrix.environment");
        workflow.ensure(
            environments == ENVIRONMENTS,
            PROPERTY,
            format_args!("job `{job}` covers {environments:?}, expected {ENVIRONMENTS:?}"),
        );
    }
    let check = workflow.job("check");
    workflow.ensure(
        environment_of(check) == Some(deployer::stacks::bootstrap::PLAN_ENVIRONMENT),
        PROPERTY,
        "the check job must run in the GitHub environment `plan`, with the plan role",
    );
    workflow.step_using("check", AWS_CREDENTIALS);
    workflow.ensure(
        workflow.env_value(check, "DEPLOYER_ENV").as_deref() == Some("${{ matrix.environment }}"),
        PROPERTY,
        "the check job plans DEPLOYER_ENV=${{ matrix.environment }}",
    );
    let plan = workflow.command("check", &["deployer", "plan"]);
    workflow.ensure(
        plan.has("--drift-only")
            && plan.has("--json")
            && plan.value_of("--env") == Some("$DEPLOYER_ENV")
            && !plan.has("--detailed-exitcode"),
        PROPERTY,
        format_args!(
            "`{}` must be `plan --env \"$DEPLOYER_ENV\" --drift-only --json`",
            plan.line()
        ),
    );
    let script = workflow.steps("check")[plan.step]["run"]
        .as_str()
        .unwrap_or_default();
    workflow.ensure(
        script.contains("2) drifted=true") && script.contains("0) drifted=false"),
        PROPERTY,
        "exit 2 is drift, 0 none, anything else a failed check",
    );
    let report = plan_report(workflow, "check", "github-issue");
    workflow.ensure(
        report.step == plan.step,
        PROPERTY,
        "the issue body is rendered from the plan, in its step",
    );
    // The issue: found by title among the `drift` issues, opened, updated, closed.
    let issue = workflow.steps("issue");
    let script = issue
        .iter()
        .filter_map(|step| step["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for part in [
        "title=\"Drift in $DEPLOYER_ENV\"",
        "--label drift",
        "gh issue create",
        "gh issue edit",
        "gh issue close",
    ] {
        workflow.ensure(
            script.contains(part),
            PROPERTY,
            format_args!("the issue job must find the issue by title and label and open, update and close it (no `{part}`)"),
        );
    }
    workflow.ensure(
        workflow
            .env_value(workflow.job("issue"), "DEPLOYER_ENV")
            .is_none()
            && issue.iter().any(|step| {
                step["env"]["DEPLOYER_ENV"].as_str() == Some("${{ matrix.environment }}")
            }),
        PROPERTY,
        "the issue job names the environment of its matrix",
    );
}

#[test]
fn the_drift_check_runs_nightly_per_environment_and_keeps_one_issue_each() {
    check_drift(&Workflow::load("drift.yml"));
}

#[test]
#[should_panic(expected = "drift.yml: drift check: `deployer plan --env $DEPLOYER_ENV")]
fn a_drift_check_on_the_whole_plan_fails() {
    check_drift(&Workflow::mutated(
        "drift.yml",
        " --drift-only --json",
        " --detailed-exitcode --json",
    ));
}

#[test]
#[should_panic(
    expected = "drift.yml: drift check: the issue job must find the issue by title and label and open, update and close it (no `gh issue close`)"
)]
fn an_issue_never_closed_fails() {
    check_drift(&Workflow::mutated(
        "drift.yml",
        "gh issue close \"$open\" --repo \"$REPOSITORY\" --comment \"The nightly drift check finds no drift in $DEPLOYER_ENV any more.\"",
        "echo \"still open\"",
    ));
}

#[test]
#[should_panic(expected = "drift.yml: least permissions: job `issue` is granted")]
fn a_drift_issue_job_with_more_than_issues_fails() {
    check_least_permissions(&Workflow::mutated(
        "drift.yml",
        "issues: write # to open, update and close the environment's drift issue",
        "issues: write\n      pull-requests: write",
    ));
}

#[test]
#[should_panic(
    expected = "drift.yml: role-to-assume: job `check` assumes ${{ secrets.AWS_ROLE_TO_ASSUME }}"
)]
fn a_drift_check_with_the_deploy_role_fails() {
    check_oidc_credentials(&Workflow::mutated(
        "drift.yml",
        "secrets.AWS_PLAN_ROLE_TO_ASSUME",
        "secrets.AWS_ROLE_TO_ASSUME",
    ));
}

#[test]
fn the_plan_comment_is_one_comment_updated_on_every_push() {
    check_plan_comment(&Workflow::load("pull-request.yml"));
}

#[test]
#[should_panic(expected = "pull-request.yml: plan comment: the step failed")]
fn a_plan_comment_that_takes_any_marked_comment_for_its_own_fails() {
    check_plan_comment(&Workflow::mutated(
        "pull-request.yml",
        ".user.login == \"github-actions[bot]\" and ",
        "",
    ));
}

#[test]
fn the_preview_comment_is_one_comment_with_the_last_url() {
    check_preview_comment(&Workflow::load("preview.yml"));
}

#[test]
#[should_panic(expected = "preview.yml: preview comment: the step failed")]
fn a_preview_comment_that_takes_any_marked_comment_for_its_own_fails() {
    check_preview_comment(&Workflow::mutated(
        "preview.yml",
        ".user.login == \"github-actions[bot]\" and ",
        "",
    ));
}

#[test]
fn the_drift_issue_opens_updates_and_closes_with_the_drift() {
    check_drift_issue(&Workflow::load("drift.yml"));
}

#[test]
#[should_panic(expected = "drift.yml: drift issue: drift coming back opens a new issue")]
fn a_drift_issue_step_that_finds_closed_issues_fails() {
    check_drift_issue(&Workflow::mutated(
        "drift.yml",
        "--state open",
        "--state all",
    ));
}
