//! Shared setup: the server a test runs against, and queue names no two tests share.

#![allow(dead_code)]

use conveyor_redis::{LocalServer, LocalServerOptions, Target};

/// The server for one test: `CONVEYOR_REDIS_URL`, or a redis-server of its own. Without
/// either, outside CI, it prints loudly that the test is skipped and why (and the test
/// returns); in CI a missing server fails the test.
pub fn target(test: &str) -> Option<Target> {
    match Target::from_env() {
        Ok(Some(t)) => Some(t),
        Ok(None) => {
            eprintln!(
                "\n!!! SKIPPED {test}: no Redis server (CONVEYOR_REDIS_URL unset, redis-server \
                 not on PATH); install redis-server or set CONVEYOR_REDIS_URL !!!\n"
            );
            None
        }
        Err(why) => panic!("{test}: {why}"),
    }
}

/// A queue name unique to this test run.
pub fn name(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{test}-{}-{nanos}", std::process::id())
}

/// Runs the body with a server and a fresh queue name, or returns after saying why not.
#[macro_export]
macro_rules! with_server {
    ($test:literal, |$url:ident, $name:ident| $body:block) => {{
        let Some(target) = common::target($test) else {
            return;
        };
        let $url = target.url();
        let $name = common::name($test);
        $body
        drop(target);
    }};
}

/// A redis-server of the test's own (one it may stop and restart), or `None` after saying why
/// not; in CI a missing server fails the test.
pub fn own_server(test: &str, options: LocalServerOptions) -> Option<LocalServer> {
    match LocalServer::start_with(options) {
        Ok(s) => Some(s),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var("CI").as_deref() != Ok("true") =>
        {
            eprintln!("\n!!! SKIPPED {test}: it starts its own redis-server, and none is on PATH: {e} !!!\n");
            None
        }
        Err(e) => panic!("{test}: {e}"),
    }
}
