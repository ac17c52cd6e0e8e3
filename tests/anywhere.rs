//! The binary runs anywhere (issue 14): copied into an empty directory on a machine without
//! the source tree, `quiver serve` with only `QUIVER_PORT` serves the embedded data and keeps
//! its jobs in the user's state directory.

use std::process::{Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn a_copied_binary_serves_the_embedded_data_from_an_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (bin_dir, cwd, home) = (tmp.path().join("bin"), tmp.path().join("empty"), tmp.path().join("home"));
    for d in [&bin_dir, &cwd, &home] {
        std::fs::create_dir_all(d).unwrap();
    }
    let bin = bin_dir.join("quiver");
    std::fs::copy(env!("CARGO_BIN_EXE_quiver"), &bin).unwrap();
    let port = free_port();
    let child = Command::new(&bin)
        .current_dir(&cwd)
        .env_clear()
        .env("HOME", &home)
        .env("QUIVER_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(child);
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(format!("{base}/status")).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the copied binary serves on QUIVER_PORT");
    let tables: serde_json::Value = reqwest::get(format!("{base}/v1/tables")).await.unwrap().json().await.unwrap();
    assert_eq!(tables["rows"][0]["name"], "flights");
    let q = "/v1/data/flights/month?metrics=flights&dateTime=2013-01-01/2013-02-01&asyncAfter=always";
    let job: serde_json::Value = reqwest::get(format!("{base}{q}")).await.unwrap().json().await.unwrap();
    assert!(job["jobTicket"].is_string(), "{job}");
    // The data went to the user's data directory, the jobs to its state directory; nothing
    // beside the binary or in the working directory.
    assert!(home.join(".local/share/quiver").is_dir());
    assert!(home.join(".local/state/quiver/jobs").is_dir());
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0, "nothing written to the working directory");
    assert_eq!(std::fs::read_dir(&bin_dir).unwrap().count(), 1, "nothing written beside the binary");
}

#[test]
fn help_documents_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in ["QUIVER_CONFIG", "QUIVER_PORT", "QUIVER_BIND", "QUIVER_LOG_FORMAT", "QUIVER_JOBS_DIR", "RUST_LOG"] {
        assert!(help.contains(var), "{var} in --help: {help}");
    }
}
