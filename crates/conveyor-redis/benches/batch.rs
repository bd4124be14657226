//! Puts one by one against puts sent in batches (`put_batch`: one script call, one round trip,
//! per batch), and conveyor's put against the raw XADD it wraps: 64 B items, per item.
//!
//! ```text
//! cargo bench -p conveyor-redis --bench batch
//! CONVEYOR_REDIS_URL=redis://host:6379/ cargo bench -p conveyor-redis --bench batch
//! ```
//!
//! Target (issue 17): batches of 100 at least 5x the items/s of single puts.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use conveyor_redis::{Channel, RedisQueue, Target};

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Item(#[serde(with = "serde_bytes")] Vec<u8>);

const BATCH: usize = 100;

fn bench(c: &mut Criterion) {
    let target = match Target::from_env() {
        Ok(Some(t)) => t,
        Ok(None) => {
            eprintln!("!!! SKIPPED the Redis batch bench: no redis-server on PATH and CONVEYOR_REDIS_URL unset !!!");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let url = target.url();
    let name = format!("bench-batch-{}", std::process::id());
    let q: RedisQueue<Item> = RedisQueue::open(&url, &name).unwrap();
    let item = Item(vec![7u8; 64]);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut raw = client.get_connection().unwrap();
    let raw_key = format!("{name}-raw");
    let mut encoded = Vec::new();
    conveyor_redis::Codec::encode(&conveyor_redis::Postcard, &item, &mut encoded).unwrap();

    let mut g = c.benchmark_group("redis put, 64 B");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("conveyor put x100", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                q.put(item.clone()).unwrap();
            }
        })
    });
    g.bench_function("raw XADD x100", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                redis::cmd("XADD")
                    .arg(&raw_key)
                    .arg("*")
                    .arg("d")
                    .arg(&encoded)
                    .query::<String>(&mut raw)
                    .unwrap();
            }
        })
    });
    g.bench_function("conveyor put_batch of 100", |b| {
        b.iter_batched(
            || vec![item.clone(); BATCH],
            |items| q.put_batch(items).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    // the stream grows by every put above: keep it from filling the server's memory
    q.destroy().unwrap();
    let _: () = redis::cmd("DEL").arg(&raw_key).query(&mut raw).unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
