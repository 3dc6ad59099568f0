//! Running the real binary the way a user does: a kubeconfig written to a temp dir (static token or an
//! `aws eks get-token`-style exec plugin) and a scrubbed environment, so nothing from the developer's
//! machine (~/.kube, ~/.aws, AWS_*, KUBECONFIG, NO_COLOR) can change a result. A timeout turns a hung
//! binary into a failed test instead of a hung CI job.

mod kubeconfig;

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub use kubeconfig::{Auth, Context, Kubeconfig, KubeconfigFile};

/// The plugin binary cargo built for this test run.
pub fn bin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-iam_roles"))
}

/// Runs the plugin (directly, or as `kubectl iam-roles`) with a scrubbed environment.
pub struct Cmd {
    via_kubectl: bool,
    args: Vec<OsString>,
    envs: Vec<(String, OsString)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    home: TempDir,
    stdout_closed: bool,
}

impl Default for Cmd {
    fn default() -> Self {
        Cmd::new()
    }
}

impl Cmd {
    /// Runs `kubectl-iam_roles` itself.
    pub fn new() -> Self {
        Cmd {
            via_kubectl: false,
            args: Vec::new(),
            envs: Vec::new(),
            stdin: None,
            timeout: Duration::from_secs(60),
            home: tempfile::tempdir().expect("temp HOME"),
            stdout_closed: false,
        }
    }

    /// Runs `kubectl iam-roles ...`, with the plugin's directory first on PATH so kubectl finds it.
    pub fn kubectl() -> Self {
        Cmd { via_kubectl: true, ..Cmd::new() }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    pub fn kubeconfig(self, kubeconfig: &KubeconfigFile) -> Self {
        self.env("KUBECONFIG", kubeconfig.path())
    }

    /// Static, obviously fake AWS credentials and a region, so the SDK signs without looking further.
    pub fn aws_credentials(self) -> Self {
        self.env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
            .env("AWS_REGION", "us-west-2")
    }

    /// Points the AWS SDK's EKS client at a fake.
    pub fn eks_endpoint(self, url: &str) -> Self {
        self.env("AWS_ENDPOINT_URL_EKS", url)
    }

    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.as_bytes().to_vec());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Closes the read end of stdout as soon as the binary starts, as `| head -0` would: its writes fail
    /// with a broken pipe.
    pub fn stdout_closed(mut self) -> Self {
        self.stdout_closed = true;
        self
    }

    /// The scrubbed HOME, to plant files (e.g. `.aws/config`) a test wants the binary to see.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn command(&self) -> Command {
        let bin = bin_path();
        let bin_dir = bin.parent().expect("binary dir").to_path_buf();
        let inherited = std::env::var_os("PATH").unwrap_or_default();
        let path =
            std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&inherited))).expect("PATH");
        let mut cmd = if self.via_kubectl {
            let mut cmd = Command::new("kubectl");
            cmd.arg("iam-roles");
            cmd
        } else {
            Command::new(&bin)
        };
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout can kill kubectl and the plugin it started.
            .process_group(0);
        cmd
    }

    /// Runs to completion; panics (failing the test) if it outlives the timeout.
    pub fn run(self) -> Output {
        let mut child = self.command().spawn().expect("spawn the binary under test");
        if let (Some(input), Some(mut stdin)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || stdin.write_all(&input));
        }
        if self.stdout_closed {
            drop(child.stdout.take());
        }
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let code = wait(&mut child, self.timeout);
        let output = Output {
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
            code: code.unwrap_or(None),
        };
        if code.is_none() {
            panic!("{self} timed out after {:?}\n{output}", self.timeout);
        }
        output
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = if self.via_kubectl { "kubectl iam-roles" } else { "kubectl-iam_roles" };
        let args: Vec<_> = self.args.iter().map(|a| a.to_string_lossy()).collect();
        write!(f, "`{program} {}`", args.join(" "))
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// `Some(exit code)` (`None` inside if killed by a signal), or `None` on timeout after killing the group.
fn wait(child: &mut Child, timeout: Duration) -> Option<Option<i32>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status.code());
        }
        if Instant::now() >= deadline {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a run printed and how it exited.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Asserts the exit code, showing both streams when it differs.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code\n{self}");
        self
    }

    /// stdout parsed as JSON (for `-o json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
