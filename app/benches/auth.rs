//! Micro-benchmarks of the per-request auth work: access-token sign and verify, and argon2id at
//! the configured parameters (the work of one login, and the ceiling logins/s is compared
//! with). `make bench` runs them and copies the figures into docs/benchmarks.md.

use std::{hint::black_box, num::NonZeroUsize, thread, time::Duration};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use keel::{
    auth::{Role, TokenKeys},
    config::Settings,
};
use uuid::Uuid;

/// The embedded defaults only (no config dir, no environment): OWASP argon2 parameters and a
/// throwaway signing key, as `keel serve` runs locally.
fn settings() -> Settings {
    Settings::load_from([("APP_CONFIG_DIR".to_owned(), "/nonexistent".to_owned())])
        .expect("embedded defaults load")
}

fn tokens(c: &mut Criterion) {
    let settings = settings();
    let keys = TokenKeys::from_settings(&settings.auth, settings.environment).expect("keys");
    let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
    let token = keys.issue(user, Role::Member, session).expect("token");

    let mut group = c.benchmark_group("tokens");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| {
        b.iter(|| keys.issue(black_box(user), Role::Member, black_box(session)));
    });
    group.bench_function("verify", |b| b.iter(|| keys.verify(black_box(&token))));
    group.finish();
}

/// What one login computes: argon2id into a reused buffer, as each hashing permit of
/// `Passwords` does, without the blocking pool around it.
fn argon2id(c: &mut Criterion) {
    let argon2 = settings().auth.argon2;
    let params = Params::new(
        argon2.memory_kib,
        argon2.iterations,
        argon2.parallelism,
        None,
    )
    .expect("argon2 parameters");
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let hash = |memory: &mut [Block]| {
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        hasher
            .hash_password_into_with_memory(
                black_box(b"correct horse battery staple"),
                black_box(b"sixteen byte slt"),
                &mut out,
                memory,
            )
            .expect("argon2id");
        out
    };
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);

    let mut group = c.benchmark_group("password");
    // Tens of milliseconds per hash: few, equal samples keep the run short and still stable.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let id = format!(
        "argon2id_m{}_t{}_p{}",
        argon2.memory_kib, argon2.iterations, argon2.parallelism
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function(&id, |b| {
        let mut memory = vec![Block::new(); params.block_count()];
        b.iter(|| hash(&mut memory));
    });
    // One hash per core at once: the raw rate the machine can reach, which shared memory
    // bandwidth keeps below cores x the single-core rate.
    group.throughput(Throughput::Elements(cores as u64));
    group.bench_function(format!("{id}_all_{cores}_cores"), |b| {
        let mut memories = vec![vec![Block::new(); params.block_count()]; cores];
        b.iter(|| {
            thread::scope(|scope| {
                for memory in &mut memories {
                    scope.spawn(|| hash(memory));
                }
            });
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: `make bench` has a time budget, and these figures settle within a second.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = tokens, argon2id
}
criterion_main!(benches);
