//! permessage-deflate in the async driver against Python `websockets`, the
//! independent peer of tests/tests/deflate.rs (same script and venv), both
//! roles, all four parameters, 0 B to 16 MiB. `#[ignore]`d: they need the
//! venv; scripts/python-peers.sh runs them.

use super::*;

// ---------------------------------------------------------------------------
// Python websockets as the peer (needs the venv: scripts/python-peers.sh)
// ---------------------------------------------------------------------------

/// Python's parameters and ours for the same negotiation, named: what the
/// Python end asks (as the peer script spells it) and what our end offers
/// (as a client; as a server we accept whatever is asked).
fn python_cases() -> Vec<(&'static str, &'static str, PerMessageDeflate)> {
    let d = PerMessageDeflate::default().min_size(0);
    vec![
        ("none", "-", d),
        (
            "server_no_context_takeover",
            "snct",
            d.server_no_context_takeover(true),
        ),
        (
            "client_no_context_takeover",
            "cnct",
            d.client_no_context_takeover(true),
        ),
        (
            "server_max_window_bits",
            "smwb=10",
            d.server_max_window_bits(Some(10)),
        ),
        (
            "client_max_window_bits",
            "cmwb=9",
            d.client_max_window_bits(Some(9)),
        ),
        (
            "all four",
            "snct,cnct,smwb=12,cmwb=11",
            d.server_no_context_takeover(true)
                .client_no_context_takeover(true)
                .server_max_window_bits(Some(12))
                .client_max_window_bits(Some(11)),
        ),
    ]
}

#[test]
#[ignore = "needs Python websockets: run scripts/python-peers.sh"]
fn python_websockets_client_against_the_async_server() {
    let (py, script) = python();
    run_for(600, async move {
        let options = PerMessageDeflate::default()
            .min_size(0)
            .client_max_window_bits(Some(15));
        let (addr, mut outcomes) = async_server(QUIET, Some(options)).await;
        for (name, params, _) in python_cases() {
            let (py, script) = (py.clone(), script.clone());
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new(&py)
                    .args([
                        &script,
                        "client",
                        &format!("ws://{addr}/"),
                        params,
                        PY_SIZES,
                    ])
                    .output()
            })
            .await
            .unwrap()
            .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{name}: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.contains("\"negotiated\": {"), "{name}: {stdout}");
            assert!(
                stdout.contains(&format!("\"echoed\": \"{PY_SIZES}\"")),
                "{name}: {stdout}"
            );
            eprintln!("{name}: {}", stdout.lines().next().unwrap_or(""));
            let outcome = outcomes.recv().await.unwrap();
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
        }
    });
}

#[test]
#[ignore = "needs Python websockets: run scripts/python-peers.sh"]
fn the_async_client_against_python_websockets_server() {
    let (py, script) = python();
    run_for(600, async move {
        for (name, params, offer) in python_cases() {
            let mut child = KillOnDrop(
                std::process::Command::new(&py)
                    .args([script.as_str(), "server", params])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
            let stdout = child.0.stdout.take().unwrap();
            let (tx, mut lines) = mpsc::unbounded_channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let line = lines.recv().await.expect("the port");
            let port: u16 = line.strip_prefix("listening ").unwrap().parse().unwrap();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let (mut read, mut write) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
            let (mut ws, log) = tapped(addr, &mut read, &mut write, Some(&offer))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let negotiated = lines.recv().await.unwrap_or_default();
            assert!(
                negotiated.starts_with("{\"negotiated\": {"),
                "{name}: {negotiated}"
            );
            eprintln!("{name}: {negotiated}");
            assert!(ws.deflate().is_some(), "{name}");
            let sizes: Vec<usize> = PY_SIZES.split(',').map(|s| s.parse().unwrap()).collect();
            for (i, &size) in sizes.iter().enumerate() {
                let text = json(size, i);
                ws.send_text(&text).await.unwrap();
                assert_eq!(
                    ws.read_message().await.unwrap(),
                    Some(CoreMessage::Text(&text)),
                    "{name}: {size} B"
                );
                ws.send_binary(text.as_bytes()).await.unwrap();
                assert_eq!(
                    ws.read_message().await.unwrap(),
                    Some(CoreMessage::Binary(text.as_bytes())),
                    "{name}: {size} B"
                );
            }
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            // The close handshake is done: the socket goes (websockets'
            // server waits for it, 20 s, before its handler returns).
            drop(ws);
            // Both ways compressed (min_size 0: every message).
            let both = {
                let log = log.lock().unwrap();
                [data_frames(&log.written), data_frames(&log.read)]
            };
            for frames in both {
                assert_eq!(frames.len(), 2 * sizes.len(), "{name}");
                assert!(frames.iter().all(|f| f.rsv1), "{name}: {frames:?}");
            }
            let status = tokio::task::spawn_blocking(move || child.0.wait())
                .await
                .unwrap()
                .unwrap();
            assert!(
                status.success(),
                "{name}: the Python server exited with {status}"
            );
        }
    });
}
