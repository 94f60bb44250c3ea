//! The per-thread deadline table, its sweeper, and the one timer thread.
//!
//! A waiting call puts `(deadline, waker)` in its thread's table the first
//! time it has to wait, and takes it out when it finishes: a thread-local
//! `RefCell` and a slab slot, no lock, no allocation once the slab has grown,
//! no tokio timer. (A tokio timer per call costs a lock and a wheel insertion
//! each way, and even one pending tokio timer makes every park of a
//! current-thread runtime read the clock; together that doubled the cost of a
//! local call.)
//!
//! Each runtime thread with a table has a *sweeper* task on that runtime. It
//! holds no timer either: it tells the process-wide *timer thread* when its
//! table's earliest deadline is, and parks. The timer thread sleeps until the
//! earliest deadline of all tables, then wakes that table's sweeper, which
//! wakes the calls whose deadline has passed, on their own thread.
//!
//! This relies on a future polled on a current-thread runtime (every actix
//! arbiter is one) staying on that thread. On a multi-threaded runtime tasks
//! move between threads, so there a call falls back to a tokio timer.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::{Deadline, now_ms};

/// "No deadline" in the atomic wake-up times.
const NEVER: u64 = u64::MAX;
/// How often a registration checks that this thread's sweeper belongs to the
/// runtime it is running on (a thread can drive two runtimes in turn).
const CHECK_RUNTIME_EVERY: u32 = 64;

thread_local! {
    static TABLE: RefCell<Table> = const { RefCell::new(Table::new()) };
}

struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    sweeper: Option<SweeperLink>,
    /// Registrations left before the next runtime check.
    until_check: u32,
    /// The waker of the last call that left the table: the next call of the
    /// same task reuses it instead of cloning (an atomic operation) again.
    spare: Option<Waker>,
}

/// This thread's sweeper, as the table sees it.
struct SweeperLink {
    runtime: tokio::runtime::Id,
    shared: Arc<SweeperShared>,
    /// The wake-up time last told to the timer thread.
    published: u64,
}

/// What a sweeper and the timer thread share.
struct SweeperShared {
    wake_at: AtomicU64,
    waker: Mutex<Option<Waker>>,
    gone: AtomicBool,
}

struct Slot {
    generation: u32,
    entry: Option<(u64, Waker)>,
}

impl Table {
    const fn new() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            sweeper: None,
            until_check: 0,
            spare: None,
        }
    }

    /// A clone of `waker`, reusing the spare one if it wakes the same task.
    fn waker(&mut self, waker: &Waker) -> Waker {
        match self.spare.take() {
            Some(spare) if spare.will_wake(waker) => spare,
            _ => waker.clone(),
        }
    }

    fn insert(&mut self, at: u64, waker: Waker) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some((at, waker));
        (index, slot.generation)
    }

    fn remove(&mut self, index: u32, generation: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize)
            && slot.generation == generation
            && let Some((_, waker)) = slot.entry.take()
        {
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(index);
            self.spare = Some(waker);
        }
    }

    /// Wakes the calls whose deadline has passed; returns the earliest deadline left.
    fn sweep(&mut self) -> u64 {
        let now = now_ms();
        let mut next = NEVER;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            match &slot.entry {
                Some((at, _)) if *at <= now => {
                    if let Some((_, waker)) = slot.entry.take() {
                        waker.wake();
                    }
                    slot.generation = slot.generation.wrapping_add(1);
                    self.free.push(u32::try_from(index).unwrap_or(u32::MAX));
                }
                Some((at, _)) => next = next.min(*at),
                None => {}
            }
        }
        next
    }
}

/// A call's place in the deadline machinery.
pub(crate) struct Watch {
    state: State,
}

enum State {
    /// Not waiting yet.
    Idle,
    /// In this thread's table.
    Listed {
        index: u32,
        generation: u32,
        table: usize,
    },
    /// On a tokio timer (multi-threaded runtimes).
    Timer(Pin<Box<tokio::time::Sleep>>),
    /// Outside any tokio runtime: nothing can wake us at the deadline.
    Unwatched,
    /// Polled once: woke itself instead of registering (see `poll_expired`).
    Yielded,
}

/// Identifies this thread's table, to notice a future that moved threads.
fn table_id(table: &RefCell<Table>) -> usize {
    table as *const RefCell<Table> as usize
}

impl Default for Watch {
    fn default() -> Self {
        Self::new()
    }
}

impl Watch {
    /// A watch not yet in use, that lets the first wait go unwatched.
    #[inline]
    pub(crate) fn new() -> Self {
        Watch { state: State::Idle }
    }

    /// A watch not yet in use, that watches from the first wait.
    #[inline]
    pub(crate) fn eager() -> Self {
        Watch {
            state: State::Yielded,
        }
    }

    /// True once `deadline` has passed; otherwise makes sure the task is
    /// woken when it does.
    ///
    /// The first time, it does nothing but wake the task again: most calls
    /// are answered by the time the task runs next (the actor ran in
    /// between), and then never need to be listed at all. Only a call still
    /// waiting on its second poll goes into the table. The clock is not read
    /// until then either.
    #[inline]
    pub(crate) fn poll_expired(&mut self, deadline: Deadline, cx: &mut Context<'_>) -> bool {
        if let State::Idle = self.state {
            self.state = State::Yielded;
            cx.waker().wake_by_ref();
            return false;
        }
        self.poll_listed(deadline, cx)
    }

    fn poll_listed(&mut self, deadline: Deadline, cx: &mut Context<'_>) -> bool {
        if let State::Yielded = self.state {
            return self.start(deadline, cx);
        }
        if deadline.has_passed() {
            self.unlist();
            return true;
        }
        match &self.state {
            State::Idle | State::Yielded => self.start(deadline, cx),
            State::Listed {
                index,
                generation,
                table,
            } => {
                let (index, generation, table) = (*index, *generation, *table);
                let moved = TABLE.with(|cell| {
                    if table_id(cell) != table {
                        return true;
                    }
                    let mut t = cell.borrow_mut();
                    if let Some(Slot {
                        generation: g,
                        entry: Some((_, waker)),
                    }) = t.slots.get_mut(index as usize)
                        && *g == generation
                        && !waker.will_wake(cx.waker())
                    {
                        waker.clone_from(cx.waker());
                    }
                    false
                });
                if moved {
                    // Left in the other thread's table, it is woken once more
                    // at the deadline; harmless.
                    self.state = State::Timer(timer(deadline));
                    return self.poll_timer(cx);
                }
                false
            }
            State::Timer(_) => self.poll_timer(cx),
            State::Unwatched => false,
        }
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.state {
            State::Timer(sleep) => sleep.as_mut().poll(cx).is_ready(),
            _ => false,
        }
    }

    fn start(&mut self, deadline: Deadline, cx: &mut Context<'_>) -> bool {
        let at = deadline.millis();
        // The fast path: this thread has a sweeper, and it is not time to
        // check that it runs on the current runtime.
        let listed = TABLE.with(|cell| {
            let mut t = cell.borrow_mut();
            if t.until_check == 0 || t.sweeper.is_none() {
                return None;
            }
            t.until_check -= 1;
            let waker = t.waker(cx.waker());
            let (index, generation) = t.insert(at, waker);
            if let Some(link) = &mut t.sweeper
                && at < link.published
            {
                link.published = at;
                publish(&link.shared, at);
            }
            Some(State::Listed {
                index,
                generation,
                table: table_id(cell),
            })
        });
        if let Some(listed) = listed {
            self.state = listed;
            return false;
        }
        self.start_checked(deadline, cx)
    }

    /// Registration that first asks tokio which runtime this is.
    fn start_checked(&mut self, deadline: Deadline, cx: &mut Context<'_>) -> bool {
        let Ok(handle) = Handle::try_current() else {
            self.state = State::Unwatched;
            return false;
        };
        if handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
            self.state = State::Timer(timer(deadline));
            return self.poll_timer(cx);
        }
        let at = deadline.millis();
        self.state = TABLE.with(|cell| {
            let table = table_id(cell);
            let mut t = cell.borrow_mut();
            t.until_check = CHECK_RUNTIME_EVERY;
            let waker = t.waker(cx.waker());
            let (index, generation) = t.insert(at, waker);
            let runtime = handle.id();
            match &mut t.sweeper {
                Some(link) if link.runtime == runtime => {
                    if at < link.published {
                        link.published = at;
                        publish(&link.shared, at);
                    }
                }
                _ => {
                    // None yet, or one of a runtime not running here now.
                    let shared = Arc::new(SweeperShared {
                        wake_at: AtomicU64::new(NEVER),
                        waker: Mutex::new(None),
                        gone: AtomicBool::new(false),
                    });
                    timer_thread().register(Arc::clone(&shared));
                    handle.spawn(sweeper(Arc::clone(&shared)));
                    t.sweeper = Some(SweeperLink {
                        runtime,
                        shared,
                        published: NEVER,
                    });
                }
            }
            State::Listed {
                index,
                generation,
                table,
            }
        });
        false
    }

    fn unlist(&mut self) {
        if let State::Listed {
            index,
            generation,
            table,
        } = std::mem::replace(&mut self.state, State::Idle)
        {
            // try_with: at thread exit the table may be gone already.
            let _ = TABLE.try_with(|cell| {
                if table_id(cell) == table {
                    cell.borrow_mut().remove(index, generation);
                }
            });
        }
    }
}

impl Drop for Watch {
    #[inline]
    fn drop(&mut self) {
        if let State::Listed { .. } = self.state {
            self.unlist();
        }
    }
}

fn timer(deadline: Deadline) -> Pin<Box<tokio::time::Sleep>> {
    Box::pin(tokio::time::sleep(deadline.remaining()))
}

/// Tells the timer thread that `shared`'s sweeper wants waking at `at`.
fn publish(shared: &SweeperShared, at: u64) {
    shared.wake_at.store(at, Ordering::Release);
    // The store above and the load below must not be reordered (a store
    // buffer lets them be, on x86 too): with the timer's own fence
    // between its store of `target` and its loads of `wake_at` (`tick`),
    // either it sees this time or this sees its `NEVER` and unparks it.
    fence(Ordering::SeqCst);
    let timer = timer_thread();
    if at < timer.target.load(Ordering::Acquire) {
        timer.thread.unpark();
    }
}

/// The sweeper task of one thread's table, on the runtime that started it.
async fn sweeper(shared: Arc<SweeperShared>) {
    struct Ended(Arc<SweeperShared>);
    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.gone.store(true, Ordering::Release);
            let _ = TABLE.try_with(|cell| {
                let mut t = cell.borrow_mut();
                if t.sweeper
                    .as_ref()
                    .is_some_and(|l| Arc::ptr_eq(&l.shared, &self.0))
                {
                    t.sweeper = None;
                }
            });
        }
    }
    let _ended = Ended(Arc::clone(&shared));
    loop {
        let next = TABLE.with(|cell| {
            let mut t = cell.borrow_mut();
            let next = t.sweep();
            if next == NEVER {
                // Nothing waits: do not keep a finished task alive.
                t.spare = None;
            }
            if let Some(link) = &mut t.sweeper {
                link.published = next;
            }
            next
        });
        // Leave the waker first, then the time: a wake-up in between only
        // makes us sweep once more.
        let mut parked = false;
        std::future::poll_fn(|cx| {
            if parked {
                return Poll::Ready(());
            }
            parked = true;
            *shared.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            publish(&shared, next);
            Poll::Pending
        })
        .await;
    }
}

/// The process-wide timer thread.
struct TimerThread {
    thread: Thread,
    /// When it will next wake (by itself).
    target: AtomicU64,
    sweepers: Mutex<Vec<Arc<SweeperShared>>>,
}

impl TimerThread {
    fn register(&self, shared: Arc<SweeperShared>) {
        self.sweepers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shared);
    }

    /// Wakes the sweepers that are due; returns the next time one will be.
    fn tick(&self) -> u64 {
        // While we look, any sweeper that publishes must unpark us (the
        // unpark is kept, so the park after this scan returns at once and
        // we look again): otherwise a time published during the scan would
        // be lost, and its calls would wait past their deadline.
        self.target.store(NEVER, Ordering::Release);
        // Pairs with the fence in `publish`.
        fence(Ordering::SeqCst);
        let now = now_ms();
        let mut next = NEVER;
        let mut sweepers = self.sweepers.lock().unwrap_or_else(PoisonError::into_inner);
        sweepers.retain(|s| !s.gone.load(Ordering::Acquire));
        for shared in sweepers.iter() {
            let at = shared.wake_at.load(Ordering::Acquire);
            if at <= now {
                let waker = shared
                    .waker
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(waker) = waker {
                    // Until the sweeper says otherwise.
                    shared.wake_at.store(NEVER, Ordering::Release);
                    waker.wake();
                }
            } else {
                next = next.min(at);
            }
        }
        next
    }
}

fn timer_thread() -> &'static TimerThread {
    static TIMER: OnceLock<&'static TimerThread> = OnceLock::new();
    TIMER.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<&'static TimerThread>();
        let spawned = std::thread::Builder::new()
            .name("deadline-timer".to_owned())
            .spawn(move || {
                let Ok(timer) = receiver.recv() else { return };
                loop {
                    let next = timer.tick();
                    timer.target.store(next, Ordering::Release);
                    match next {
                        NEVER => std::thread::park(),
                        at => std::thread::park_timeout(Duration::from_millis(
                            at.saturating_sub(now_ms()),
                        )),
                    }
                }
            });
        let thread = match &spawned {
            Ok(handle) => handle.thread().clone(),
            // Without a timer thread, deadlines of waiting local calls are
            // only checked when they are polled; say so once.
            Err(e) => {
                tracing::error!(error = %e, "cannot start the deadline timer thread");
                std::thread::current()
            }
        };
        let timer: &'static TimerThread = Box::leak(Box::new(TimerThread {
            thread,
            target: AtomicU64::new(NEVER),
            sweepers: Mutex::new(Vec::new()),
        }));
        let _ = sender.send(timer);
        timer
    })
}
