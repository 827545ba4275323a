//! Throwaway PostgreSQL, Redis and memcached servers for the connection-pool tests.
//!
//! Each server runs on a free loopback port in its own temporary directory and is stopped
//! (and its directory removed) when its handle drops. PostgreSQL's cluster is created
//! once per test process with `initdb` and copied for every instance, so each test gets a
//! private server in well under a second.
//!
//! If a server's binaries are missing, [`Postgres::start`] and friends return `None` after
//! printing a loud `SKIPPED` line — unless `GOSYNC_REQUIRE_SERVERS=1` (set by CI through
//! `scripts/ci-services.sh`), in which case they panic, so CI cannot pass by skipping.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the cluster directory
//! is given to the `postgres` user and every PostgreSQL command runs through `runuser`.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser password of every PostgreSQL test cluster.
pub const PG_PASSWORD: &str = "gosync-secret";

/// Whether missing servers must fail the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("GOSYNC_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

fn missing(what: &str, hint: &str) {
    assert!(
        !required(),
        "GOSYNC_REQUIRE_SERVERS=1 but {what} is not available: {hint}"
    );
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         SKIPPED: {what} is not available ({hint}).\n\
         These tests need real servers; install them (Debian: apt-get install postgresql \
         redis-server memcached) or run scripts/ci-services.sh.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
}

// Free loopback ports outside the kernel's ephemeral range, so that no outgoing connection
// takes a server's port before the server binds it (or while it is down for a restart).
#[path = "ports.rs"]
mod ports;
pub use ports::free_port;

fn temp_dir(kind: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gosync-{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

// ---------------------------------------------------------------- PostgreSQL

struct PgInstall {
    bin: PathBuf,
    /// Run PostgreSQL commands as this user (via runuser) when we are root.
    as_user: Option<&'static str>,
    /// An initialised cluster to copy.
    template: PathBuf,
}

fn pg_bin() -> Option<PathBuf> {
    if let Some(p) = which("pg_ctl") {
        // Often a symlink into /usr/lib/postgresql/<version>/bin.
        let p = std::fs::canonicalize(&p).unwrap_or(p);
        return p.parent().map(Path::to_path_buf);
    }
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn pg_cmd(install_bin: &Path, as_user: Option<&str>, tool: &str) -> Command {
    let exe = install_bin.join(tool);
    match as_user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(u).arg("--").arg(exe);
            c
        }
        None => Command::new(exe),
    }
}

fn run(mut c: Command, what: &str) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn give_to(dir: &Path, user: Option<&str>) {
    if let Some(u) = user {
        let mut c = Command::new("chown");
        c.arg("-R").arg(format!("{u}:")).arg(dir);
        run(c, "chown");
    }
}

fn pg_install() -> Option<&'static PgInstall> {
    static INSTALL: OnceLock<Option<PgInstall>> = OnceLock::new();
    INSTALL
        .get_or_init(|| {
            let bin = pg_bin()?;
            let as_user = if is_root() { Some("postgres") } else { None };
            // The template is kept between runs (one per PostgreSQL version and user):
            // `initdb` costs seconds, a copy of its result a fraction of one.
            let version = bin
                .parent()
                .and_then(|p| p.file_name())
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default();
            let keep = std::env::temp_dir().join(format!(
                "gosync-pg-template-{version}-{}",
                as_user.unwrap_or("self")
            ));
            let data = keep.join("data");
            if !keep.join("ready").is_file() {
                let template = temp_dir("pg-template");
                let pwfile = template.join("pw");
                std::fs::write(&pwfile, PG_PASSWORD).expect("write the password file");
                give_to(&template, as_user);
                let mut c = pg_cmd(&bin, as_user, "initdb");
                c.arg("-D")
                    .arg(template.join("data"))
                    .arg("--username=postgres")
                    .arg("--auth-host=scram-sha-256")
                    .arg("--auth-local=trust")
                    .arg(format!("--pwfile={}", pwfile.display()))
                    .arg("--no-sync")
                    .arg("--encoding=UTF8");
                run(c, "initdb");
                std::fs::write(template.join("ready"), "").expect("mark the template ready");
                // Another test process may have won the race: then use its template.
                if std::fs::rename(&template, &keep).is_err() {
                    let _ = std::fs::remove_dir_all(&template);
                }
            }
            Some(PgInstall {
                bin,
                as_user,
                template: data,
            })
        })
        .as_ref()
}

/// A running throwaway PostgreSQL server.
pub struct Postgres {
    install: &'static PgInstall,
    dir: PathBuf,
    data: PathBuf,
    /// The TCP port it listens on (127.0.0.1).
    pub port: u16,
}

impl Postgres {
    /// Starts a private server, or returns `None` (after a loud message) if PostgreSQL
    /// is not installed and servers are not required.
    pub fn start() -> Option<Postgres> {
        let Some(install) = pg_install() else {
            missing(
                "PostgreSQL (initdb, pg_ctl)",
                "no /usr/lib/postgresql/*/bin/initdb",
            );
            return None;
        };
        let dir = temp_dir("pg");
        let data = dir.join("data");
        let mut c = Command::new("cp");
        c.arg("-a").arg(&install.template).arg(&data);
        run(c, "copy the template cluster");
        give_to(&dir, install.as_user);
        let pg = Postgres {
            install,
            dir,
            data,
            port: free_port(),
        };
        pg.start_again();
        Some(pg)
    }

    /// Starts the server again after [`kill`](Self::kill), on the same port.
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c fsync=off -c full_page_writes=off -c max_connections=150 -c shared_buffers=16MB",
            self.port,
            self.dir.display()
        );
        let mut c = pg_cmd(&self.install.bin, self.install.as_user, "pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .arg("-o")
            .arg(opts)
            .arg("-l")
            .arg(self.dir.join("log"))
            .arg("-w")
            .arg("-t")
            .arg("30")
            .arg("start");
        run(c, "pg_ctl start");
        wait_for_port(self.port, "PostgreSQL");
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: like a crash).
    pub fn kill(&self) {
        let mut c = pg_cmd(&self.install.bin, self.install.as_user, "pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .arg("-m")
            .arg("immediate")
            .arg("-w")
            .arg("stop");
        run(c, "pg_ctl stop");
    }

    /// A libpq-style connection string for user `postgres` with `password`.
    pub fn conn_str(&self, password: &str, application_name: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres password={password} dbname=postgres \
             application_name={application_name} connect_timeout=10",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut c = pg_cmd(&self.install.bin, self.install.as_user, "pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .arg("-m")
            .arg("immediate")
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = c.status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------- Redis and memcached

/// A server run as a child process (Redis, memcached).
pub struct ChildServer {
    what: &'static str,
    cmd: Vec<String>,
    child: Option<Child>,
    dir: PathBuf,
    /// The TCP port it listens on (127.0.0.1).
    pub port: u16,
}

impl ChildServer {
    fn start(what: &'static str, cmd: Vec<String>, dir: PathBuf, port: u16) -> ChildServer {
        let mut s = ChildServer {
            what,
            cmd,
            child: None,
            dir,
            port,
        };
        s.start_again();
        s
    }

    /// (Re)starts the server on the same port.
    pub fn start_again(&mut self) {
        let log = std::fs::File::create(self.dir.join("log")).expect("create the log file");
        let child = Command::new(&self.cmd[0])
            .args(&self.cmd[1..])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.what));
        self.child = Some(child);
        wait_for_port(self.port, self.what);
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a throwaway Redis (`redis-server`), or `None` after a loud message.
pub fn redis() -> Option<ChildServer> {
    let Some(bin) = which("redis-server") else {
        missing("Redis (redis-server)", "not on PATH");
        return None;
    };
    let port = free_port();
    let cmd = [
        bin.display().to_string(),
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
        "--protected-mode".into(),
        "no".into(),
    ];
    Some(ChildServer::start(
        "Redis",
        cmd.to_vec(),
        temp_dir("redis"),
        port,
    ))
}

/// Starts a throwaway memcached, or `None` after a loud message.
pub fn memcached() -> Option<ChildServer> {
    let Some(bin) = which("memcached") else {
        missing("memcached", "not on PATH");
        return None;
    };
    let port = free_port();
    let mut cmd = vec![
        bin.display().to_string(),
        "-l".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-U".into(),
        "0".into(),
        "-c".into(),
        "256".into(),
    ];
    if is_root() {
        // memcached refuses to run as root without naming a user to switch to.
        cmd.extend(["-u".into(), "nobody".into()]);
    }
    Some(ChildServer::start(
        "memcached",
        cmd,
        temp_dir("memcached"),
        port,
    ))
}
