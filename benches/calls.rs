//! What a call costs: raw actix, a local `ServiceRef`, a remote `ServiceRef`
//! over loopback TCP, and a bare tokio TCP echo of the same frames as the
//! yardstick for the remote path.
//!
//! Run with `cargo bench --bench calls`. After criterion's own report this
//! prints the ratios the project promises, twice: from criterion's point
//! estimates, and as paired ratios (see [`Paired`]: the two sides timed in
//! alternating rounds, the steadier measure on a shared machine):
//!
//! - local `ServiceRef` call / raw actix `Addr::send`: target ≤ 1.10
//!   (`local/service_ref_call_unmeasured`, a ref outside any node's
//!   metrics, shows what the metrics cost)
//! - remote call / bare TCP echo, 1 in flight: target ≤ 1.25
//! - remote call / bare TCP echo, 64 in flight: target ≤ 1.25
//!
//! The remote server (a node, or the echo server) runs on its own thread with
//! its own runtime, as another process would; the caller on the bench thread.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Context, Handler, Message};
use bytes::{Buf, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use futures_util::future::join_all;
use runtime::config::{self, Plan};
use runtime::transport::frame::{PREFIX_LEN, REPLY_HEADER_LEN, REQUEST_HEADER_LEN};
use runtime::transport::handshake::Secret;
use runtime::{
    Call, Catalogue, Module, NoConfig, Node, ServiceRef, StartContext, StartError, codec,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The batch size of the "many in flight" benchmarks.
const IN_FLIGHT: usize = 64;

// --- A minimal service, so the numbers are the framework's ----------------

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ping {
    pub n: u64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("never")]
pub struct Never;

runtime::service! {
    /// Answers pings.
    pub Pinger = "pinger", error Never {
        Ping -> u64,
    }
}

/// The same ping as a plain actix message, for the raw actix baseline.
struct RawPing(Ping);

impl Message for RawPing {
    type Result = Result<u64, Never>;
}

struct PingActor;

impl Actor for PingActor {
    type Context = Context<Self>;
}

impl Handler<Call<Ping>> for PingActor {
    type Result = Result<u64, Never>;
    fn handle(&mut self, call: Call<Ping>, _: &mut Context<Self>) -> Self::Result {
        Ok(call.n + 1)
    }
}

impl Handler<RawPing> for PingActor {
    type Result = Result<u64, Never>;
    fn handle(&mut self, ping: RawPing, _: &mut Context<Self>) -> Self::Result {
        Ok(ping.0.n + 1)
    }
}

struct PingModule;

impl Module for PingModule {
    type Service = Pinger;
    type Config = NoConfig;
    async fn start(_: NoConfig, _: StartContext) -> Result<Pinger, StartError> {
        Ok(Pinger::start(PingActor))
    }
}

fn ping(n: u64) -> Ping {
    Ping {
        n,
        note: "a short note, like a product id".to_owned(),
    }
}

/// What the local benches send: a ping whose note takes no allocation, so
/// that both sides time the call and nothing else (an allocated note, the
/// same on both, added some 30 ns to each and narrowed the ratio).
fn bare_ping(n: u64) -> Ping {
    Ping {
        n,
        note: String::new(),
    }
}

fn catalogue() -> Catalogue {
    Catalogue::new().with::<PingModule>()
}

fn secret() -> Secret {
    Secret::from_bytes("bench", b"a secret for the benchmark only".to_vec()).unwrap()
}

// --- Where the threads run ----------------------------------------------------

/// The CPU of the remote servers (the node and the echo server).
const SERVER_CPU: usize = 1;
/// The CPU of the bench thread (the callers).
const CLIENT_CPU: usize = 0;

/// Keeps the calling thread on `cpu`, so that every remote benchmark, ours
/// and the echo alike, has its client and server on two different CPUs, as
/// two processes of a split deployment would: left to the kernel, the two
/// threads sometimes share a CPU (a wake-up is then a context switch) and
/// sometimes do not (an inter-processor wake-up, several times slower on a
/// virtual machine), and which one a benchmark got decided its time more
/// than the code did. On a machine with one CPU the threads stay unpinned.
fn pin_to_cpu(cpu: usize) {
    // SAFETY: `set` is a plain bit set, zeroed, then filled by the libc
    // macros; pid 0 means the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!(
                "could not keep a bench thread on CPU {cpu} ({}): it runs wherever the kernel puts it",
                std::io::Error::last_os_error()
            );
        }
    }
}

// --- The remote server: a node on its own thread ---------------------------

/// Starts node "server" on its own thread; returns the plan to reach it.
fn start_server_node() -> Plan {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let plan = plan(addr);
    let server_plan = plan.clone();
    let (ready, is_ready) = mpsc::channel();
    std::thread::spawn(move || {
        pin_to_cpu(SERVER_CPU);
        let system = actix_rt::System::new();
        system.block_on(async move {
            let _node = Node::builder(&server_plan, &catalogue())
                .listener(listener)
                .secret(secret())
                .start("server")
                .await
                .unwrap();
            ready.send(()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    is_ready.recv().unwrap();
    plan
}

fn plan(server: SocketAddr) -> Plan {
    let text = format!(
        "[cluster]\nsecret_env = \"UNUSED\"\n[runtime]\ncall_timeout_ms = 60000\n\
         [nodes.server]\nlisten = \"{server}\"\nmodules = [\"pinger\"]\n"
    );
    Plan::new(config::parse(&text).unwrap(), &catalogue()).unwrap()
}

// --- The yardstick: a bare tokio TCP echo of the same frame sizes ---------

/// Where the pings' numbers start: every ping a benchmark sends encodes to
/// as many bytes as this one (the codec writes an integer in as few bytes
/// as its value needs: a 5-byte varint from here to 2^32), the size the
/// echo's frames are made.
const TYPICAL_PING: u64 = 1_000_000;

/// Frame sizes of one remote ping: request and reply, prefix included.
fn frame_sizes() -> (usize, usize) {
    let request = REQUEST_HEADER_LEN + codec::encode(&ping(TYPICAL_PING)).unwrap().len();
    let outcome: Result<u64, Never> = Ok(TYPICAL_PING + 1);
    let reply = REPLY_HEADER_LEN + codec::encode(&outcome).unwrap().len();
    (request, reply)
}

/// A length-prefixed echo server: for each request frame, one reply frame of
/// `reply_len` bytes. Reads what is there, answers every whole frame in it
/// with one write.
fn start_echo_server(reply_len: usize) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        pin_to_cpu(SERVER_CPU);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(echo_connection(stream, reply_len));
            }
        });
    });
    addr
}

async fn echo_connection(mut stream: TcpStream, reply_len: usize) {
    stream.set_nodelay(true).unwrap();
    let mut reply = vec![0u8; reply_len];
    reply[..PREFIX_LEN]
        .copy_from_slice(&u32::try_from(reply_len - PREFIX_LEN).unwrap().to_be_bytes());
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut output = Vec::with_capacity(64 * 1024);
    loop {
        if stream.read_buf(&mut input).await.unwrap_or(0) == 0 {
            return;
        }
        while input.len() >= PREFIX_LEN {
            let len = u32::from_be_bytes([input[0], input[1], input[2], input[3]]) as usize;
            if input.len() < PREFIX_LEN + len {
                break;
            }
            input.advance(PREFIX_LEN + len);
            output.extend_from_slice(&reply);
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
    }
}

/// The echo client: writes `count` request frames at once, reads `count` replies.
struct EchoClient {
    stream: TcpStream,
    /// `IN_FLIGHT` request frames, built once: a batch is its first
    /// `count` (built per batch, it was work our side does not do).
    requests: Vec<u8>,
    request_len: usize,
    reply_len: usize,
    buf: Vec<u8>,
}

impl EchoClient {
    async fn connect(addr: SocketAddr, request_len: usize, reply_len: usize) -> EchoClient {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut request = vec![0u8; request_len];
        request[..PREFIX_LEN].copy_from_slice(
            &u32::try_from(request_len - PREFIX_LEN)
                .unwrap()
                .to_be_bytes(),
        );
        EchoClient {
            stream,
            requests: request.repeat(IN_FLIGHT),
            request_len,
            reply_len,
            buf: vec![0; reply_len * IN_FLIGHT],
        }
    }

    async fn round_trips(&mut self, count: usize) {
        self.stream
            .write_all(&self.requests[..self.request_len * count])
            .await
            .unwrap();
        self.stream
            .read_exact(&mut self.buf[..self.reply_len * count])
            .await
            .unwrap();
    }
}

// --- The benchmarks ---------------------------------------------------------

// The baseline and ours are timed by twin functions, written out rather
// than through a shared closure: each side's future is awaited as a
// caller's code awaits it, with nothing wrapped around it.

/// Time for `iters` raw actix round trips.
fn time_raw_actix(system: &actix_rt::SystemRunner, addr: &Addr<PingActor>, iters: u64) -> Duration {
    system.block_on(async {
        let started = Instant::now();
        for n in 0..iters {
            let reply = addr
                .send(RawPing(bare_ping(TYPICAL_PING + n)))
                .await
                .unwrap();
            std::hint::black_box(reply.unwrap());
        }
        started.elapsed()
    })
}

/// Time for `iters` calls through `pinger`, one after the other.
fn time_calls(
    system: &actix_rt::SystemRunner,
    pinger: &ServiceRef<Pinger>,
    iters: u64,
) -> Duration {
    system.block_on(async {
        let started = Instant::now();
        for n in 0..iters {
            let reply = pinger.call(bare_ping(TYPICAL_PING + n)).await.unwrap();
            std::hint::black_box(reply.unwrap());
        }
        started.elapsed()
    })
}

/// Time for `iters` batches of `in_flight` calls through `pinger`.
fn time_batches(
    system: &actix_rt::SystemRunner,
    pinger: &ServiceRef<Pinger>,
    in_flight: usize,
    iters: u64,
) -> Duration {
    system.block_on(async {
        let started = Instant::now();
        for i in 0..iters {
            let calls =
                (0..in_flight as u64).map(|k| pinger.call(ping(TYPICAL_PING + i * 1000 + k)));
            for reply in join_all(calls).await {
                std::hint::black_box(reply.unwrap().unwrap());
            }
        }
        started.elapsed()
    })
}

/// Time for `iters` batches of `in_flight` echoed frames.
fn time_echoes(
    system: &actix_rt::SystemRunner,
    echo: &mut EchoClient,
    in_flight: usize,
    iters: u64,
) -> Duration {
    system.block_on(async {
        let started = Instant::now();
        for _ in 0..iters {
            echo.round_trips(in_flight).await;
        }
        started.elapsed()
    })
}

fn local(c: &mut Criterion, paired: &Paired, results: &mut Vec<PairedRatio>) {
    let system = actix_rt::System::new();
    // The ref as a node hands it out: supervised, and counted in the
    // node's metrics.
    let (addr, pinger, bare, _node) = system.block_on(async {
        let addr = PingActor.start();
        // A bare local ref, as `ServiceRef::local` makes it: not counted in
        // any metrics (what a call costs before the node's bookkeeping).
        let bare = ServiceRef::local(Pinger::start(PingActor));
        let plan = Plan::new(
            config::parse("[nodes.main]\nmodules = [\"pinger\"]\n").unwrap(),
            &catalogue(),
        )
        .unwrap();
        let node = Node::start(&plan, "main", &catalogue()).await.unwrap();
        let pinger = node.service::<Pinger>().unwrap();
        (addr, pinger, bare, node)
    });
    let mut group = c.benchmark_group("local");
    group.bench_function("raw_actix_send", |b| {
        b.iter_custom(|iters| time_raw_actix(&system, &addr, iters))
    });
    group.bench_function("service_ref_call", |b| {
        b.iter_custom(|iters| time_calls(&system, &pinger, iters))
    });
    group.bench_function("service_ref_call_unmeasured", |b| {
        b.iter_custom(|iters| time_calls(&system, &bare, iters))
    });
    group.finish();
    if paired.wants("local/service_ref_call", "local/raw_actix_send") {
        results.push(paired.measure(
            "local ServiceRef call / raw actix send",
            1.10,
            20_000,
            |iters| time_raw_actix(&system, &addr, iters),
            |iters| time_calls(&system, &pinger, iters),
        ));
    }
}

fn remote(c: &mut Criterion, paired: &Paired, results: &mut Vec<PairedRatio>) {
    let plan = start_server_node();
    let (request_len, reply_len) = frame_sizes();
    let echo_addr = start_echo_server(reply_len);

    let system = actix_rt::System::new();
    let (client, pinger) = system.block_on(async {
        let client = Node::builder(&plan, &catalogue())
            .secret(secret())
            .client()
            .await
            .unwrap();
        let pinger = client.service::<Pinger>().unwrap();
        pinger.call(ping(0)).await.unwrap().unwrap(); // connect before measuring
        (client, pinger)
    });
    let mut echo = system.block_on(EchoClient::connect(echo_addr, request_len, reply_len));

    let mut group = c.benchmark_group("remote");
    group.measurement_time(Duration::from_secs(8));
    for in_flight in [1, IN_FLIGHT] {
        group.throughput(Throughput::Elements(in_flight as u64));
        group.bench_with_input(
            BenchmarkId::new("tcp_echo", in_flight),
            &in_flight,
            |b, &in_flight| {
                b.iter_custom(|iters| time_echoes(&system, &mut echo, in_flight, iters))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("service_ref_call", in_flight),
            &in_flight,
            |b, &in_flight| b.iter_custom(|iters| time_batches(&system, &pinger, in_flight, iters)),
        );
    }
    group.finish();
    for (in_flight, iters) in [(1, 300), (IN_FLIGHT, 100)] {
        if paired.wants(
            &format!("remote/service_ref_call/{in_flight}"),
            &format!("remote/tcp_echo/{in_flight}"),
        ) {
            // Both closures need the echo client and the system: one
            // cell lends them in turn.
            let echo = std::cell::RefCell::new(&mut echo);
            results.push(paired.measure(
                &format!("remote call / bare TCP echo, {in_flight} in flight"),
                1.25,
                iters,
                |iters| time_echoes(&system, &mut echo.borrow_mut(), in_flight, iters),
                |iters| time_batches(&system, &pinger, in_flight, iters),
            ));
        }
    }
    drop(client);
}

// --- Paired ratios ------------------------------------------------------------

/// Ratios measured in alternating rounds within one process: each round
/// times the baseline and ours back to back (which goes first alternates),
/// so a change in the machine's load hits both sides of a round alike. On a
/// shared machine criterion's separate estimates for the two can drift
/// apart by several percent between runs; the median ratio of paired
/// rounds is steadier.
struct Paired {
    /// Skipped in criterion's profiling, test and list modes.
    enabled: bool,
    /// The benchmark filter given on the command line, if any: a pair runs
    /// if it names either of its benchmarks (as a substring).
    filter: Option<String>,
    rounds: usize,
}

/// One paired ratio: ours / the baseline, per round.
struct PairedRatio {
    what: String,
    target: f64,
    /// Sorted.
    ratios: Vec<f64>,
    /// Median time per iteration of each side, in nanoseconds.
    ours_ns: f64,
    baseline_ns: f64,
}

impl Paired {
    fn from_args() -> Paired {
        // Criterion's options that take a value (the filter is the first
        // argument that is neither an option nor such a value).
        const WITH_VALUE: [&str; 16] = [
            "--save-baseline",
            "--baseline",
            "--baseline-lenient",
            "--load-baseline",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--confidence-level",
            "--significance-level",
            "--profile-time",
            "--output-format",
            "--color",
            "--plotting-backend",
            "--format",
        ];
        let mut enabled = true;
        let mut filter = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if matches!(arg.as_str(), "--profile-time" | "--test" | "--list") {
                enabled = false;
            }
            if WITH_VALUE.contains(&arg.as_str()) {
                args.next();
            } else if !arg.starts_with('-') && filter.is_none() {
                filter = Some(arg);
            }
        }
        Paired {
            enabled,
            filter,
            rounds: 41,
        }
    }

    fn wants(&self, ours: &str, baseline: &str) -> bool {
        // A filter anchored as a regex (`^local/`, `/64$`) still matches.
        let names = |f: &str| {
            let f = f.trim_start_matches('^').trim_end_matches('$');
            ours.contains(f) || baseline.contains(f)
        };
        self.enabled && self.filter.as_deref().is_none_or(names)
    }

    /// `rounds` rounds (after one to warm up) of `iters` iterations of each.
    fn measure(
        &self,
        what: &str,
        target: f64,
        iters: u64,
        mut baseline: impl FnMut(u64) -> Duration,
        mut ours: impl FnMut(u64) -> Duration,
    ) -> PairedRatio {
        baseline(iters);
        ours(iters);
        let mut rounds: Vec<(Duration, Duration)> = (0..self.rounds)
            .map(|round| {
                if round % 2 == 0 {
                    let base = baseline(iters);
                    (base, ours(iters))
                } else {
                    let own = ours(iters);
                    (baseline(iters), own)
                }
            })
            .collect();
        let mut ratios: Vec<f64> = rounds
            .iter()
            .map(|(base, own)| own.as_secs_f64() / base.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let per_iteration = |time: Duration| time.as_nanos() as f64 / iters as f64;
        rounds.sort_by_key(|(base, _)| *base);
        let baseline_ns = per_iteration(rounds[rounds.len() / 2].0);
        rounds.sort_by_key(|(_, own)| *own);
        let ours_ns = per_iteration(rounds[rounds.len() / 2].1);
        PairedRatio {
            what: what.to_owned(),
            target,
            ratios,
            ours_ns,
            baseline_ns,
        }
    }
}

impl PairedRatio {
    fn quantile(&self, q: f64) -> f64 {
        let last = self.ratios.len() - 1;
        self.ratios[((last as f64) * q).round() as usize]
    }
}

fn print_paired(results: &[PairedRatio], rounds: usize) {
    if results.is_empty() {
        return;
    }
    println!("\npaired ratios (median of {rounds} alternating rounds in this run; quartiles):");
    for result in results {
        let median = result.quantile(0.5);
        let verdict = if median <= result.target {
            "meets"
        } else {
            "MISSES"
        };
        println!(
            "  {}: {median:.2}x ({:.2}x to {:.2}x; {:.0} ns / {:.0} ns) ({verdict} the {:.2}x target)",
            result.what,
            result.quantile(0.25),
            result.quantile(0.75),
            result.ours_ns,
            result.baseline_ns,
            result.target
        );
    }
}

// --- Ratios -------------------------------------------------------------------

/// When this run started: estimates older than that are an earlier run's.
static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

/// Criterion's point estimate of the time per iteration, in nanoseconds:
/// the slope of its linear fit (what it reports as `time:`), else the mean;
/// `None` unless this run measured it (criterion's files outlive a run, and
/// a run filtered to `local` must not print the remote ratios of an earlier
/// one as its own). Criterion's directory is found as criterion finds it.
fn estimate(id: &str) -> Option<f64> {
    let dir = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|dir| PathBuf::from(dir).join("criterion"))
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion"));
    let path = dir.join(id).join("new/estimates.json");
    let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if STARTED.get().is_none_or(|started| written < *started) {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

fn print_ratios() {
    let rows = [
        (
            "local ServiceRef call / raw actix send",
            "local/service_ref_call",
            "local/raw_actix_send",
            1.10,
            1.0,
        ),
        (
            "remote call / bare TCP echo, 1 in flight",
            "remote/service_ref_call/1",
            "remote/tcp_echo/1",
            1.25,
            1.0,
        ),
        (
            "remote call / bare TCP echo, 64 in flight",
            "remote/service_ref_call/64",
            "remote/tcp_echo/64",
            1.25,
            64.0,
        ),
    ];
    println!("\nratios (time per iteration, lower is better):");
    // The difference per call too: at 1 in flight the echo's time is
    // mostly the wake-ups between virtual CPUs, which both pay, so the
    // ratio alone says little of what a call costs beyond the echo.
    for (what, ours, baseline, target, calls) in rows {
        match (estimate(ours), estimate(baseline)) {
            (Some(ours_ns), Some(base_ns)) => {
                let ratio = ours_ns / base_ns;
                let verdict = if ratio <= target { "meets" } else { "MISSES" };
                let more = (ours_ns - base_ns) / calls;
                println!(
                    "  {what}: {:.0} ns / {:.0} ns = {ratio:.2}x ({verdict} the {target:.2}x target); \
                     {more:+.0} ns per call",
                    ours_ns, base_ns
                );
            }
            _ => println!("  {what}: not measured in this run"),
        }
    }
}

fn main() {
    let _ = STARTED.set(std::time::SystemTime::now());
    pin_to_cpu(CLIENT_CPU);
    let mut criterion = Criterion::default().configure_from_args();
    let paired = Paired::from_args();
    let mut results = Vec::new();
    local(&mut criterion, &paired, &mut results);
    remote(&mut criterion, &paired, &mut results);
    criterion.final_summary();
    print_ratios();
    print_paired(&results, paired.rounds);
}
