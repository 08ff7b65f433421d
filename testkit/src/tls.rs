//! A throw-away PostgreSQL server that speaks only TLS, with a certificate
//! from a CA made for the run: the TLS tests' peer. Local connections without
//! TLS are refused by its pg_hba.conf, so a client that connects did encrypt.
//! The server, its data and its keys live in one temporary directory, removed
//! when the value is dropped; the machine's own cluster is not touched.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running TLS-only server.
pub struct TlsServer {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The CA that signed its certificate (for `sslrootcert`).
    pub ca: PathBuf,
    /// A CA that did not (a wrong `sslrootcert`).
    pub wrong_ca: PathBuf,
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// The newest PostgreSQL's binaries (Debian's layout).
fn bindir() -> PathBuf {
    let version = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql (Debian's postgresql package)")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
        .expect("a PostgreSQL version");
    PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"))
}

/// `program` as the server's owner: PostgreSQL will not run as root.
fn as_owner(program: PathBuf) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } == 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A self-signed CA certificate `<name>.pem` with its key `<name>.key`.
fn certificate_authority(dir: &Path, name: &str, common_name: &str) {
    let (key, pem, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={common_name}"),
    );
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem,
            "-days", "2", "-subj", &subject,
        ],
    );
}

impl TlsServer {
    /// Makes the certificates, initialises a cluster and starts it.
    pub fn start() -> TlsServer {
        let dir = std::env::temp_dir().join(format!("startgate-tls-{}", super::unique("pg")));
        std::fs::create_dir_all(&dir).expect("temp dir");
        certificate_authority(&dir, "ca", "startgate test CA");
        certificate_authority(&dir, "wrong-ca", "not the right CA");
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("san");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        run(Command::new("chmod").arg("0700").arg(&dir));
        run(Command::new("chmod")
            .arg("0600")
            .arg(dir.join("server.key")));
        // SAFETY: as above.
        if unsafe { libc_geteuid() } == 0 {
            run(Command::new("chown").args(["-R", "postgres"]).arg(&dir));
        }
        let data = dir.join("data");
        run(as_owner(bindir().join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             fsync = off\nmax_connections = 50\n",
            dir = dir.display()
        );
        let mut postgresql = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        postgresql.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), postgresql).expect("conf");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("hba");
        run(as_owner(bindir().join("pg_ctl"))
            .args(["-w", "-t", "30", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .arg("start"));
        TlsServer {
            port,
            ca: dir.join("ca.pem"),
            wrong_ca: dir.join("wrong-ca.pem"),
            dir,
        }
    }

    /// `postgres://postgres@HOST:PORT` for `host` `127.0.0.1` or `localhost`.
    pub fn base(&self, host: &str) -> String {
        format!("postgres://postgres@{host}:{}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = as_owner(bindir().join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
