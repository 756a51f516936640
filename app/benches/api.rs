//! Micro-benchmarks of per-response work outside the database: problem+json rendering of an
//! `ApiError` and keyset cursor encode / decode. `make bench` runs them and copies the figures
//! into docs/benchmarks.md.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keel::{
    error::{ApiError, FieldError},
    pagination::{self, Cursor},
};
use poem_openapi::types::ParseFromParameter as _;
use uuid::Uuid;

const REQUEST_ID: &str = "0193a6c2-7c1e-7d4a-9f1e-3b2a1c0d9e8f";

fn problem_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("problem_json");
    group.throughput(Throughput::Elements(1));
    group.bench_function("not_found", |b| {
        b.iter(|| ApiError::NotFound.into_response_with(black_box(Some(REQUEST_ID))));
    });
    // The largest common problem: a validation failure naming two fields.
    group.bench_function("validation_two_fields", |b| {
        b.iter(|| {
            ApiError::Validation(vec![
                FieldError::new("/email", "is not an email address"),
                FieldError::new("/password", "must be at least 12 characters"),
            ])
            .into_response_with(black_box(Some(REQUEST_ID)))
        });
    });
    group.finish();
}

fn cursor(c: &mut Criterion) {
    let id = Uuid::now_v7();
    let encoded = pagination::encode(id);
    let mut group = c.benchmark_group("cursor");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode", |b| b.iter(|| pagination::encode(black_box(id))));
    group.bench_function("decode", |b| {
        b.iter(|| Cursor::parse_from_parameter(black_box(&encoded)));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: `make bench` has a time budget, and these figures settle within a second.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = problem_json, cursor
}
criterion_main!(benches);
