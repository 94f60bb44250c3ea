//! Fault injection on the real binary: the three-node deployment as OS
//! processes, under a steady load of calls from a client node (100 calls/s
//! to `currency` on node store, 100/s to `shipping` on node pay) and
//! shoppers buying through the web pages, while a node is killed, stopped,
//! restarted, cut off or flooded. Each test prints what callers saw (run
//! with `--nocapture`) and checks it: failures are typed and prompt, no call
//! hangs to its deadline, nobody else is hurt, the node comes back, and the
//! audit finds every confirmed order stored and charged exactly once.
//!
//! The tests take turns (they measure time; on two cores they would
//! disturb each other's heartbeats).

mod support;

use std::time::Duration;

use cart::api::CartItem;
use catalog::api::{Catalog, SearchProducts};
use currency::api::{Convert, Currency, Money};
use futures_util::StreamExt;
use orders::api::Orders;
use payment::api::Payment;
use runtime::CallErrorKind;
use shipping::api::{Address, GetQuote, Shipping};
use support::cluster::Cluster;
use support::load::{Load, Record, Seen, Tally};
use support::purchases::{Shoppers, audit};

/// One call to each back-end node every this long.
const EVERY: Duration = Duration::from_millis(10);

/// How long a load call may wait: far beyond any detection time, so a call
/// that ends at its deadline is a call that hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound on detecting a dead or unreachable node.
const DETECTION: Duration = Duration::from_secs(3);

/// One fault test at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `currency Convert` USD to USD on node store: the answer must be the
/// amount asked for, so a stale or crossed reply would show as wrong.
fn store_load(cluster: &Cluster) -> Load {
    let currency = cluster.service::<Currency>(CALL_TIMEOUT);
    Load::start("store", EVERY, move |n| {
        let currency = currency.clone();
        async move {
            let from = Money {
                currency_code: "USD".to_owned(),
                units: i64::try_from(n).unwrap(),
                nanos: 0,
            };
            let convert = Convert {
                from: from.clone(),
                to_code: "USD".to_owned(),
            };
            match currency.call(convert).await {
                Ok(Ok(money)) if money == from => Seen::Ok,
                Ok(Ok(money)) => Seen::Wrong(format!("asked {from:?}, got {money:?}")),
                Ok(Err(error)) => Seen::Refused(error.to_string()),
                Err(error) => Seen::Failed(error.kind()),
            }
        }
    })
}

/// `shipping GetQuote` on node pay.
fn pay_load(cluster: &Cluster) -> Load {
    let shipping = cluster.service::<Shipping>(CALL_TIMEOUT);
    Load::start("pay", EVERY, move |n| {
        let shipping = shipping.clone();
        async move {
            let quote = GetQuote {
                address: Address {
                    street_address: "1600 Amphitheatre Parkway".to_owned(),
                    city: "Mountain View".to_owned(),
                    state: "CA".to_owned(),
                    country: "United States".to_owned(),
                    zip_code: 94043,
                },
                items: vec![CartItem {
                    product_id: "OLJCESPC7Z".to_owned(),
                    quantity: i32::try_from(n % 5 + 1).unwrap(),
                }],
            };
            match shipping.call(quote).await {
                Ok(Ok(_)) => Seen::Ok,
                Ok(Err(error)) => Seen::Refused(error.to_string()),
                Err(error) => Seen::Failed(error.kind()),
            }
        }
    })
}

/// The steady load and the shoppers.
struct Traffic {
    store: Load,
    pay: Load,
    shoppers: Shoppers,
}

/// Every load call, once the traffic stopped.
struct Outcomes {
    store: Vec<Record>,
    pay: Vec<Record>,
}

impl Traffic {
    /// Starts it, and waits until calls to both nodes succeed.
    async fn start(cluster: &Cluster) -> Traffic {
        let traffic = Traffic {
            store: store_load(cluster),
            pay: pay_load(cluster),
            shoppers: Shoppers::start(&cluster.shop_url().await, 2),
        };
        traffic.store.successes_after(Duration::ZERO, 20).await;
        traffic.pay.successes_after(Duration::ZERO, 20).await;
        traffic
    }

    /// Stops everything, audits the purchases and prints what was seen.
    async fn finish(self, cluster: &Cluster, test: &str) -> Outcomes {
        let store = self.store.stop().await;
        let pay = self.pay.stop().await;
        let report = self.shoppers.stop().await;
        let orders = cluster.service::<Orders>(CALL_TIMEOUT);
        let payment = cluster.service::<Payment>(CALL_TIMEOUT);
        let refunded = audit(&report.purchases, &orders, &payment).await;
        let attempts: u32 = report.purchases.iter().map(|p| p.attempts).sum();
        println!("== {test}");
        println!("   calls to store: {}", Tally::of(&store));
        println!("   calls to pay:   {}", Tally::of(&pay));
        println!(
            "   shoppers: {} orders confirmed in {attempts} checkout submissions; \
             other answers by status {:?}; {refunded} charges refunded on the way; \
             audit: every confirmed order stored, one charge standing per purchase",
            report.purchases.len(),
            report.statuses
        );
        assert!(!report.purchases.is_empty(), "no purchase was made");
        // Whatever happened, no call was answered wrongly or hung.
        for (node, records) in [("store", &store), ("pay", &pay)] {
            let tally = Tally::of(records.iter());
            assert_eq!(tally.wrong, 0, "{node}: {tally}");
            assert_eq!(tally.refused, 0, "{node}: {tally}");
            assert!(
                !tally.failed.contains_key("TimedOut"),
                "{node}: a call hung to its deadline: {tally}"
            );
        }
        Outcomes { store, pay }
    }
}

fn failed(seen: &Seen) -> bool {
    matches!(seen, Seen::Failed(_))
}

fn ok(seen: &Seen) -> bool {
    *seen == Seen::Ok
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

#[actix_rt::test]
async fn kill_9_of_a_node_fails_its_calls_at_once_and_it_rejoins_when_restarted() {
    let _turn = TURN.lock().await;
    let mut cluster = Cluster::start(&[]).await;
    let traffic = Traffic::start(&cluster).await;

    let killed = traffic.pay.now();
    cluster.kill("pay").await;
    let first = traffic.pay.first(killed, DETECTION, failed).await;
    let detected = first.ended() - killed;
    // Down for a while: every call fails, fast.
    let down_until = traffic.pay.now() + Duration::from_millis(500);
    traffic
        .pay
        .first(down_until, Duration::from_secs(5), |_| true)
        .await;
    cluster.restart("pay").await;
    let restarted = traffic.pay.now();
    let back = traffic
        .pay
        .first(restarted, Duration::from_secs(10), ok)
        .await;
    let recovered = back.ended() - restarted;
    traffic.pay.successes_after(back.at, 50).await;

    let seen = traffic.finish(&cluster, "kill -9 of node pay").await;
    let while_down: Vec<&Record> = seen
        .pay
        .iter()
        .filter(|r| r.at >= first.ended() && r.at < restarted)
        .collect();
    let down = Tally::of(while_down.iter().copied());
    println!(
        "   detected {} after the kill ({:?}); while down: {down}; \
         first success {} after the restart",
        ms(detected),
        first.seen,
        ms(recovered)
    );
    assert!(detected <= DETECTION, "detected after {detected:?}");
    assert!(
        !while_down.is_empty(),
        "no call was made while pay was down"
    );
    assert_eq!(down.ok, 0, "{down}");
    assert!(
        down.slowest < Duration::from_millis(500),
        "calls to a dead node must fail fast: {down}"
    );
    assert!(
        while_down
            .iter()
            .all(|r| r.seen == Seen::Failed(CallErrorKind::NotDelivered)),
        "calls made after the death was known were certainly not delivered: {down}"
    );
    assert_eq!(Tally::of(&seen.store).failures(), 0, "store was not hurt");
    // After the first success, it stays up.
    let after = Tally::of(seen.pay.iter().filter(|r| r.at >= back.ended()));
    assert_eq!(after.failures(), 0, "{after}");
}

#[actix_rt::test]
async fn a_node_stopped_for_1_s_is_not_declared_dead() {
    let _turn = TURN.lock().await;
    let mut cluster = Cluster::start(&[]).await;
    let traffic = Traffic::start(&cluster).await;
    let connections = cluster.client().connections_to("pay");

    let stopped = traffic.pay.now();
    cluster.signal("pay", libc::SIGSTOP);
    // The fault is a pause of this length; nothing is awaited but time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.signal("pay", libc::SIGCONT);
    let resumed = traffic.pay.now();
    traffic.pay.successes_after(resumed, 100).await;

    let seen = traffic
        .finish(&cluster, "SIGSTOP of node pay for 1 s")
        .await;
    let during = Tally::of(seen.pay.iter().filter(|r| r.at >= stopped));
    println!(
        "   stopped for {}: calls to pay since: {during}; client connections to pay: {} before, {} after",
        ms(resumed - stopped),
        connections,
        cluster.client().connections_to("pay")
    );
    assert!(
        during.slowest >= Duration::from_millis(800),
        "the calls made while pay was stopped waited for it: {during}"
    );
    assert_eq!(during.failures(), 0, "{during}");
    assert_eq!(Tally::of(&seen.store).failures(), 0);
    assert_eq!(
        cluster.client().connections_to("pay"),
        connections,
        "the connection to pay was never dropped"
    );
    for node in ["web", "pay"] {
        let log = cluster.log(node);
        assert!(
            log.iter().all(|l| !l.contains("declared unreachable")),
            "node {node} declared a peer dead: {log:#?}"
        );
    }
}

#[actix_rt::test]
async fn a_node_stopped_for_10_s_is_declared_dead_within_3_s_and_rejoins_after_sigcont() {
    let _turn = TURN.lock().await;
    let mut cluster = Cluster::start(&[]).await;
    let traffic = Traffic::start(&cluster).await;

    let stopped = traffic.store.now();
    cluster.signal("store", libc::SIGSTOP);
    let first = traffic.store.first(stopped, DETECTION * 2, failed).await;
    let detected = first.ended() - stopped;
    // The fault is a pause of this length; nothing is awaited but time.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(traffic.store.now() - stopped)).await;
    cluster.signal("store", libc::SIGCONT);
    let resumed = traffic.store.now();
    let back = traffic
        .store
        .first(resumed, Duration::from_secs(15), ok)
        .await;
    let recovered = back.ended() - resumed;
    traffic.store.successes_after(back.at, 50).await;

    let seen = traffic
        .finish(&cluster, "SIGSTOP of node store for 10 s")
        .await;
    let meanwhile = Tally::of(
        seen.store
            .iter()
            .filter(|r| r.at >= first.ended() && r.at < resumed),
    );
    println!(
        "   detected {} after SIGSTOP ({:?}); while stopped: {meanwhile}; \
         first success {} after SIGCONT",
        ms(detected),
        first.seen,
        ms(recovered)
    );
    assert!(detected <= DETECTION, "detected after {detected:?}");
    // Calls made while it was stopped were written and never answered:
    // they fail as outcome unknown when it is declared dead. (Not the
    // first failure by its end: a call queued at that very instant, not
    // yet written, fails as not delivered, rightly, and is failed first.
    // Calls made 100 ms before have certainly been written.)
    let pending: Vec<&Seen> = seen
        .store
        .iter()
        .filter(|r| {
            r.at >= stopped && r.at + Duration::from_millis(100) <= first.ended() && failed(&r.seen)
        })
        .map(|r| &r.seen)
        .collect();
    assert!(!pending.is_empty(), "no call failed for its stop");
    assert!(
        pending
            .iter()
            .all(|seen| **seen == Seen::Failed(CallErrorKind::OutcomeUnknown)),
        "calls pending when it was declared dead fail as outcome unknown: {pending:?}"
    );
    assert_eq!(meanwhile.ok, 0, "{meanwhile}");
    assert!(
        recovered < Duration::from_secs(8),
        "recovered after {recovered:?}"
    );
    assert_eq!(Tally::of(&seen.pay).failures(), 0, "pay was not hurt");
    let web = cluster.log("web");
    assert!(
        web.iter()
            .any(|l| l.contains("peer declared unreachable") && l.contains("store")),
        "web declared store unreachable: {web:#?}"
    );
}

#[actix_rt::test]
async fn a_node_restarted_on_its_port_rejoins_and_no_stale_reply_reaches_a_new_call() {
    let _turn = TURN.lock().await;
    let mut cluster = Cluster::start(&[]).await;
    let traffic = Traffic::start(&cluster).await;

    let terminated = traffic.store.now();
    let status = cluster.terminate("store").await;
    let first = traffic.store.first(terminated, DETECTION, failed).await;
    let gone = traffic.store.now();
    cluster.restart("store").await;
    let restarted = traffic.store.now();
    let back = traffic
        .store
        .first(restarted, Duration::from_secs(10), ok)
        .await;
    traffic.store.successes_after(back.at, 100).await;

    let seen = traffic
        .finish(&cluster, "SIGTERM of node store, restarted on its port")
        .await;
    println!(
        "   exited with {status} {} after SIGTERM; callers told {} after SIGTERM ({:?}); \
         first success {} after the restart; all {} answers matched their calls",
        ms(gone - terminated),
        ms(first.ended() - terminated),
        first.seen,
        ms(back.ended() - restarted),
        Tally::of(&seen.store).ok
    );
    assert!(status.success(), "a node asked to stop exits 0: {status}");
    assert_eq!(first.seen, Seen::Failed(CallErrorKind::NotDelivered));
    assert_eq!(Tally::of(&seen.pay).failures(), 0, "pay was not hurt");
}

#[actix_rt::test]
async fn a_cut_or_blackholed_connection_is_detected_and_healed() {
    let _turn = TURN.lock().await;
    // Web logs its connections coming up and closing (info).
    let mut cluster = Cluster::start(&[("web", "logging.level=info")]).await;
    let traffic = Traffic::start(&cluster).await;

    // Drop: web's connection to pay is reset; web sees it closed, a new
    // one comes up, and shoppers (whose checkouts call pay) get through.
    let logged = |cluster: &mut Cluster, what: &str| {
        cluster
            .log("web")
            .iter()
            .filter(|l| l.contains(what) && l.contains("pay"))
            .count()
    };
    let (ups, closes) = (
        logged(&mut cluster, "connection up"),
        logged(&mut cluster, "connection closed"),
    );
    cluster.fault("web", "cut pay").await;
    let cut = std::time::Instant::now();
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    while logged(&mut cluster, "connection closed") == closes
        || logged(&mut cluster, "connection up") == ups
    {
        poll.tick().await;
        assert!(
            cut.elapsed() < DETECTION * 2,
            "web did not see the cut connection to pay closed and a new one come up"
        );
    }
    traffic.shoppers.confirm_more(2).await;
    // Blackhole: nothing moves between web and pay, both ways.
    cluster.fault("web", "stall pay").await;
    let stalled = std::time::Instant::now();
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    let declared = loop {
        poll.tick().await;
        if cluster
            .log("web")
            .iter()
            .any(|l| l.contains("peer declared unreachable") && l.contains("pay"))
        {
            break stalled.elapsed();
        }
        assert!(
            stalled.elapsed() < DETECTION * 2,
            "web never declared pay unreachable"
        );
    };
    cluster.fault("web", "resume pay").await;
    let resumed = std::time::Instant::now();
    // Shoppers get through again.
    traffic.shoppers.confirm_more(4).await;
    let healed = resumed.elapsed();

    let seen = traffic
        .finish(&cluster, "cut, then blackhole, of web's connection to pay")
        .await;
    println!(
        "   web declared pay unreachable {} after the blackhole began; \
         4 more purchases confirmed {} after it ended; \
         the client's own connections were not touched",
        ms(declared),
        ms(healed)
    );
    assert!(declared <= DETECTION, "declared after {declared:?}");
    assert_eq!(Tally::of(&seen.store).failures(), 0);
    assert_eq!(Tally::of(&seen.pay).failures(), 0);
}

#[actix_rt::test]
async fn a_flood_past_the_in_flight_limit_is_refused_as_overloaded_in_bounded_memory() {
    let _turn = TURN.lock().await;
    let mut cluster = Cluster::start(&[("store", "runtime.max_in_flight_per_peer=16")]).await;
    let traffic = Traffic::start(&cluster).await;
    let before_kib = cluster.peak_memory_kib("store");

    const CALLS: usize = 20_000;
    const QUERY_BYTES: usize = 16 * 1024;
    let catalog = cluster.service::<Catalog>(CALL_TIMEOUT);
    let started = std::time::Instant::now();
    let outcomes: Vec<Result<(), CallErrorKind>> = futures_util::stream::iter(0..CALLS)
        .map(|n| {
            let catalog = catalog.clone();
            async move {
                let query = format!("{n:0>QUERY_BYTES$}");
                match catalog.call(SearchProducts { query }).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => panic!("search refused: {error}"),
                    Err(error) => Err(error.kind()),
                }
            }
        })
        .buffer_unordered(2048)
        .collect()
        .await;
    let took = started.elapsed();
    let after_kib = cluster.peak_memory_kib("store");
    let served = outcomes.iter().filter(|o| o.is_ok()).count();
    let overloaded = outcomes
        .iter()
        .filter(|o| **o == Err(CallErrorKind::Overloaded))
        .count();
    let store_now = traffic.store.now();
    traffic.store.successes_after(store_now, 50).await;

    let seen = traffic
        .finish(&cluster, "flood of node store past its in-flight limit")
        .await;
    let sent_mib = CALLS * QUERY_BYTES / (1024 * 1024);
    println!(
        "   {CALLS} searches of {} KiB ({sent_mib} MiB) in {:.1} s: {served} served, \
         {overloaded} refused as Overloaded, {} other; store's peak memory {} MiB before, {} MiB after",
        QUERY_BYTES / 1024,
        took.as_secs_f64(),
        CALLS - served - overloaded,
        before_kib / 1024,
        after_kib / 1024
    );
    assert_eq!(served + overloaded, CALLS, "every call served or refused");
    assert!(overloaded > 0, "the limit of 16 refused some");
    assert!(served > 0);
    assert!(
        after_kib - before_kib < 64 * 1024,
        "store's memory grew by {} MiB",
        (after_kib - before_kib) / 1024
    );
    // The steady load may have been refused too, but never lost.
    for records in [&seen.store, &seen.pay] {
        let tally = Tally::of(records.iter());
        assert!(
            tally
                .failed
                .keys()
                .all(|kind| kind == &format!("{:?}", CallErrorKind::Overloaded)),
            "{tally}"
        );
    }
}
