//! Shared by the property tests (`properties.rs`) and the model-based test (`model.rs`): strategies
//! that generate random scenarios (sequences of batches mixing every flag, over small id spaces so
//! that events interact), and the helpers that drive a [`Ledger`] through them.
//!
//! A scenario is generated abstractly and then *resolved* into concrete batches: the batch
//! timestamps (each batch advances the clock by 1 ms to 5 s past the previous batch's last event)
//! and the user-defined timestamps of imported events (which must land between the previous
//! batch's last event and the current batch) depend on the batches before them.

#![allow(dead_code)]

pub mod reference;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use tally_ledger::*;

/// The first batch's timestamp: 1 s, so that small absolute timestamps are "ancient".
pub const TIMESTAMP_START: u64 = 1_000_000_000;
/// Transfer ids of batch `i` are drawn from `1 + i * TRANSFER_ID_STRIDE ..` plus a window, so that
/// neighbouring batches share ids (Exists, IdAlreadyFailed) while later batches still create.
pub const TRANSFER_ID_STRIDE: u128 = 40;
pub const TRANSFER_ID_WINDOW: u128 = 70;
/// Accounts live in `1..=ACCOUNT_ID_MAX`.
pub const ACCOUNT_ID_MAX: u128 = 10;
/// A "future" imported timestamp: far beyond any batch of a scenario, so that it stays in the future
/// when the batch is re-submitted later.
pub const FUTURE_OFFSET: u64 = 1 << 50;

/// The number of cases: `PROPTEST_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// The proptest configuration: `default_cases` cases unless `PROPTEST_CASES` says otherwise, and
/// enough shrinking to get scenarios of many batches down to a readable failing input.
pub fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig { cases: cases(default_cases), max_shrink_iters: 8192, ..ProptestConfig::default() }
}

/// How an event's `timestamp` field is filled in when the scenario is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampChoice {
    /// Zero (what a non-imported event must carry).
    Zero,
    /// `delta` nanoseconds after the previous imported event of the batch (the first: after the
    /// previous batch's last event). Valid for an imported event.
    After(u64),
    /// Equal to the previous one (regresses).
    Same,
    /// A small absolute value, long before everything (regresses; nonzero for a normal event).
    Ancient(u64),
    /// Shortly before the previous batch's last event (regresses, or predates an account).
    Before(u64),
    /// Far in the future (must not advance).
    Future,
    /// `u64::MAX` (out of range).
    Max,
}

#[derive(Debug, Clone)]
pub enum GeneratedBatch {
    Accounts(Vec<(Account, TimestampChoice)>),
    Transfers(Vec<(Transfer, TimestampChoice)>),
}

/// One generated step: how far the clock advances past the previous batch's last event, and the
/// batch.
#[derive(Debug, Clone)]
pub struct GeneratedStep {
    pub advance_ns: u64,
    pub batch: GeneratedBatch,
}

/// A concrete batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    Accounts(Vec<Account>),
    Transfers(Vec<Transfer>),
}

impl Batch {
    pub fn len(&self) -> usize {
        match self {
            Batch::Accounts(events) => events.len(),
            Batch::Transfers(events) => events.len(),
        }
    }
}

/// A concrete step: the batch timestamp and the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub timestamp: u64,
    pub batch: Batch,
}

/// The results of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Results {
    Accounts(Vec<CreateAccountResult>),
    Transfers(Vec<CreateTransferResult>),
}

/// Applies a concrete batch at `timestamp`.
pub fn apply(ledger: &mut Ledger, timestamp: u64, batch: &Batch) -> Results {
    match batch {
        Batch::Accounts(events) => Results::Accounts(ledger.create_accounts(timestamp, events)),
        Batch::Transfers(events) => Results::Transfers(ledger.create_transfers(timestamp, events)),
    }
}

/// Fills in batch timestamps and imported timestamps.
pub fn resolve(steps: &[GeneratedStep]) -> Vec<Step> {
    let mut last_event: u64 = TIMESTAMP_START - 1;
    let mut resolved = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let timestamp = if index == 0 { TIMESTAMP_START } else { last_event + step.advance_ns };
        let mut previous = last_event;
        let mut fill = |choice: TimestampChoice| -> u64 {
            let value = match choice {
                TimestampChoice::Zero => 0,
                TimestampChoice::After(delta) => previous + delta,
                TimestampChoice::Same => previous,
                TimestampChoice::Ancient(value) => value,
                TimestampChoice::Before(delta) => last_event - delta,
                TimestampChoice::Future => timestamp + FUTURE_OFFSET,
                TimestampChoice::Max => u64::MAX,
            };
            if matches!(choice, TimestampChoice::After(_)) {
                previous = value;
            }
            value
        };
        let batch = match &step.batch {
            GeneratedBatch::Accounts(events) => Batch::Accounts(
                events.iter().map(|(account, choice)| Account { timestamp: fill(*choice), ..*account }).collect(),
            ),
            GeneratedBatch::Transfers(events) => Batch::Transfers(
                events.iter().map(|(transfer, choice)| Transfer { timestamp: fill(*choice), ..*transfer }).collect(),
            ),
        };
        assert!(previous < timestamp, "imported timestamps stay before the batch");
        last_event = timestamp + batch.len() as u64 - 1;
        resolved.push(Step { timestamp, batch });
    }
    resolved
}

/// Every account id a scenario can name (and a few it cannot), for lookups.
pub fn account_ids() -> Vec<u128> {
    let mut ids: Vec<u128> = (0..=ACCOUNT_ID_MAX + 2).collect();
    ids.push(u128::MAX);
    ids
}

/// Every transfer id a scenario's steps name.
pub fn transfer_ids(steps: &[Step]) -> Vec<u128> {
    let mut ids: Vec<u128> = steps
        .iter()
        .flat_map(|step| match &step.batch {
            Batch::Transfers(events) => events.iter().flat_map(|t| [t.id, t.pending_id]).collect(),
            Batch::Accounts(_) => Vec::new(),
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

// ---------------------------------------------------------------------------------------------
// Strategies.
//
// Most events are sane (so that transfers get created and interact); a "noisy" minority carries
// the invalid fields that trigger validation statuses. Echoes copy earlier events to later
// positions, as they are or changed a little, and derive posts and voids from earlier pending
// transfers, so that exists, already-posted/voided and expired happen often.

fn weighted(probability: f64) -> impl Strategy<Value = bool> {
    prop::bool::weighted(probability)
}

/// A small user-data value (so that exists-with-different-user-data happens).
fn small<T: From<u8> + std::fmt::Debug + Clone>() -> impl Strategy<Value = T> {
    prop_oneof![6 => Just(T::from(0)), 2 => Just(T::from(1)), 1 => Just(T::from(2))]
}

/// Accounts `1..=OPENING_ACCOUNTS` are opened by the first batch; the others may come later.
pub const OPENING_ACCOUNTS: u128 = 8;

/// The ledger an account id belongs to (mostly: a few events say otherwise).
pub fn ledger_of(account_id: u128) -> u32 {
    if (6..=8).contains(&account_id) { 2 } else { 1 }
}

/// An account other than `debit` in the same ledger, chosen by `choice`.
fn same_ledger(debit: u128, choice: u128) -> u128 {
    let peers: Vec<u128> =
        (1..=OPENING_ACCOUNTS).filter(|id| *id != debit && ledger_of(*id) == ledger_of(debit)).collect();
    peers[(choice as usize) % peers.len()]
}

/// An account id named by a transfer: mostly one that exists.
fn transfer_account_id(noisy: bool) -> BoxedStrategy<u128> {
    if noisy {
        prop_oneof![
            4 => 1..=ACCOUNT_ID_MAX + 1,
            1 => Just(0u128),
            1 => Just(u128::MAX),
        ]
        .boxed()
    } else {
        prop_oneof![17 => 1..=OPENING_ACCOUNTS, 2 => OPENING_ACCOUNTS + 1..=ACCOUNT_ID_MAX].boxed()
    }
}

fn timestamp_choice(imported_batch: bool, noisy: bool) -> BoxedStrategy<TimestampChoice> {
    match (imported_batch, noisy) {
        (true, false) => (1u64..=1_000).prop_map(TimestampChoice::After).boxed(),
        (true, true) => prop_oneof![
            2 => (1u64..=1_000).prop_map(TimestampChoice::After),
            1 => Just(TimestampChoice::Same),
            1 => (1u64..=100).prop_map(TimestampChoice::Ancient),
            2 => (1u64..=40).prop_map(TimestampChoice::Before),
            1 => Just(TimestampChoice::Future),
            1 => Just(TimestampChoice::Zero),
            1 => Just(TimestampChoice::Max),
        ]
        .boxed(),
        (false, false) => Just(TimestampChoice::Zero).boxed(),
        (false, true) => {
            prop_oneof![6 => Just(TimestampChoice::Zero), 1 => (1u64..=100).prop_map(TimestampChoice::Ancient)].boxed()
        }
    }
}

fn account_flags(imported_batch: bool, noisy: bool) -> impl Strategy<Value = AccountFlags> {
    (
        weighted(0.15),
        if noisy {
            prop_oneof![5 => Just(0u8), 3 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)].boxed() // limits
        } else {
            prop_oneof![5 => Just(0u8), 3 => Just(1u8), 1 => Just(2u8)].boxed()
        },
        weighted(0.4),
        weighted(if noisy { 0.2 } else { 0.02 }),
        weighted(if noisy { 0.2 } else { 0.0 }),
        weighted(match (imported_batch, noisy) {
            (true, false) => 1.0,
            (true, true) => 0.7,
            (false, false) => 0.0,
            (false, true) => 0.2,
        }),
    )
        .prop_map(|(linked, limits, history, closed, reserved, imported)| {
            let mut flags = AccountFlags::NONE;
            flags.set(AccountFlags::LINKED, linked);
            flags.set(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS, limits & 1 != 0);
            flags.set(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS, limits & 2 != 0);
            flags.set(AccountFlags::HISTORY, history);
            flags.set(AccountFlags::CLOSED, closed);
            flags.set(AccountFlags::IMPORTED, imported);
            if reserved {
                flags |= AccountFlags::from_bits_retain(1 << 12);
            }
            flags
        })
}

/// An account event; `id` fixed for the opening batch.
pub fn account_event(imported_batch: bool, id: Option<u128>) -> impl Strategy<Value = (Account, TimestampChoice)> {
    weighted(if id.is_some() { 0.0 } else { 0.25 }).prop_flat_map(move |noisy| {
        let id = match id {
            Some(id) => Just(id).boxed(),
            None if noisy => prop_oneof![6 => 1..=ACCOUNT_ID_MAX, 1 => Just(0u128), 1 => Just(u128::MAX)].boxed(),
            None => (1..=ACCOUNT_ID_MAX).boxed(),
        };
        // Which field a noisy event gets wrong (0: none of these).
        let wrong = if noisy { (0u8..=8).boxed() } else { Just(0u8).boxed() };
        let user_data = (small::<u128>(), small::<u64>(), small::<u32>());
        (id, account_flags(imported_batch, noisy), user_data, wrong, 1u16..=2, timestamp_choice(imported_batch, noisy))
            .prop_map(move |(id, mut flags, (ud128, ud64, ud32), wrong, code, timestamp)| {
                if id == 2 && !imported_batch {
                    // One account that is never limited, so that money can flow in.
                    flags.set(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS, false);
                    flags.set(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS, false);
                    flags.set(AccountFlags::CLOSED, false);
                }
                let mut account = Account {
                    id,
                    user_data_128: ud128,
                    user_data_64: ud64,
                    user_data_32: ud32,
                    ledger: ledger_of(id),
                    code,
                    flags,
                    ..Account::default()
                };
                match wrong {
                    1 => account.debits_pending = 1,
                    2 => account.debits_posted = 2,
                    3 => account.credits_pending = 3,
                    4 => account.credits_posted = 4,
                    5 => account.reserved = 5,
                    6 => account.ledger = 0,
                    7 => account.code = 0,
                    8 => account.ledger = 3 - account.ledger,
                    _ => {}
                }
                (account, timestamp)
            })
    })
}

/// What a generated transfer means to do (the flags it starts from).
#[derive(Debug, Clone, Copy)]
enum TransferKind {
    Single,
    Pending,
    Post,
    Void,
}

fn transfer_kind() -> impl Strategy<Value = TransferKind> {
    prop_oneof![
        45 => Just(TransferKind::Single),
        40 => Just(TransferKind::Pending),
        9 => Just(TransferKind::Post),
        6 => Just(TransferKind::Void),
    ]
}

/// An amount: mostly small; rarely `AMOUNT_MAX` or huge (overflows).
fn amount(noisy: bool) -> BoxedStrategy<u128> {
    if noisy {
        prop_oneof![
            6 => 0u128..=200,
            2 => Just(AMOUNT_MAX),
            1 => (0u128..=3).prop_map(|k| u128::MAX / 2 + k),
            1 => (0u128..=3).prop_map(|k| u128::MAX - 1 - k),
        ]
        .boxed()
    } else {
        prop_oneof![1 => Just(0u128), 18 => 1u128..=20, 2 => 1u128..=100].boxed()
    }
}

/// The ids of batch `index`: mostly new, partly shared with the batches before.
fn transfer_id_range(batch_index: usize) -> std::ops::Range<u128> {
    let base = 1 + batch_index as u128 * TRANSFER_ID_STRIDE;
    base..base + TRANSFER_ID_WINDOW
}

/// A transfer event of batch `batch_index`.
pub fn transfer_event(batch_index: usize, imported_batch: bool) -> impl Strategy<Value = (Transfer, TimestampChoice)> {
    weighted(0.2).prop_flat_map(move |noisy| transfer_event_with(batch_index, imported_batch, noisy))
}

fn transfer_event_with(
    batch_index: usize,
    imported_batch: bool,
    noisy: bool,
) -> impl Strategy<Value = (Transfer, TimestampChoice)> {
    let ids = transfer_id_range(batch_index);
    let id = if noisy {
        prop_oneof![8 => ids.clone(), 1 => Just(0u128), 1 => Just(u128::MAX)].boxed()
    } else {
        ids.clone().boxed()
    };
    // Post and void name a transfer of this or one of the three batches before.
    let pending_low = ids.start.saturating_sub(3 * TRANSFER_ID_STRIDE).max(1);
    let pending_target = if noisy {
        prop_oneof![
            6 => pending_low..ids.end,
            1 => Just(0u128),
            1 => Just(u128::MAX),
            2 => Just(u128::MAX - 1), // Replaced by the transfer's own id below.
        ]
        .boxed()
    } else {
        (pending_low..ids.end).boxed()
    };
    let accounts = (transfer_account_id(noisy), transfer_account_id(noisy), weighted(0.7), weighted(0.7));
    let extra_flags = (
        weighted(0.15),                          // linked
        weighted(0.12),                          // balancing_debit
        weighted(0.08),                          // balancing_credit
        weighted(0.05),                          // closing_debit
        weighted(0.05),                          // closing_credit
        weighted(if noisy { 0.3 } else { 0.0 }), // a flag that conflicts
        weighted(if noisy { 0.1 } else { 0.0 }), // reserved
        weighted(match (imported_batch, noisy) {
            (true, false) => 1.0,
            (true, true) => 0.7,
            (false, false) => 0.0,
            (false, true) => 0.15,
        }),
    );
    let fields = (
        amount(noisy),
        prop_oneof![1 => Just(0u32), 1 => 1u32..=3], // pending timeout
        if noisy { prop_oneof![3 => Just(0u32), 1 => 1u32..=3].boxed() } else { Just(0u32).boxed() }, // stray timeout
        if noisy { prop_oneof![3 => Just(0u128), 1 => 1u128..=40].boxed() } else { Just(0u128).boxed() }, // stray pending_id
        (small::<u128>(), small::<u64>(), small::<u32>()),
        if noisy { prop_oneof![1 => Just(None), 1 => (0u32..=2).prop_map(Some)].boxed() } else { Just(None).boxed() }, // ledger
        if noisy { prop_oneof![3 => 1u16..=2, 1 => Just(0u16)].boxed() } else { (1u16..=2).boxed() },
        (weighted(0.2), weighted(0.2)), // post/void: set ledger, code
    );
    (transfer_kind(), id, pending_target, accounts, extra_flags, fields, timestamp_choice(imported_batch, noisy))
        .prop_map(move |(kind, id, pending_target, accounts, extra, fields, timestamp)| {
            let (debit, credit, post_void_debit_zero, post_void_credit_zero) = accounts;
            let (
                linked,
                balancing_debit,
                balancing_credit,
                closing_debit,
                closing_credit,
                conflict,
                reserved,
                imported,
            ) = extra;
            let (
                amount,
                pending_timeout,
                stray_timeout,
                stray_pending_id,
                (ud128, ud64, ud32),
                ledger,
                code,
                (set_ledger, set_code),
            ) = fields;
            let mut flags = TransferFlags::NONE;
            flags.set(TransferFlags::LINKED, linked);
            flags.set(TransferFlags::IMPORTED, imported);
            if reserved {
                flags |= TransferFlags::from_bits_retain(1 << 13);
            }
            let mut transfer =
                Transfer { id, user_data_128: ud128, user_data_64: ud64, user_data_32: ud32, ..Transfer::default() };
            match kind {
                TransferKind::Single | TransferKind::Pending => {
                    let pending = matches!(kind, TransferKind::Pending);
                    flags.set(TransferFlags::PENDING, pending);
                    flags.set(TransferFlags::BALANCING_DEBIT, balancing_debit);
                    flags.set(TransferFlags::BALANCING_CREDIT, balancing_credit);
                    // Closing flags on pending transfers (where they are allowed), or noise.
                    flags.set(TransferFlags::CLOSING_DEBIT, closing_debit && (pending || conflict));
                    flags.set(TransferFlags::CLOSING_CREDIT, closing_credit && (pending || conflict));
                    transfer.debit_account_id = debit;
                    // Mostly two different accounts.
                    transfer.credit_account_id = if noisy { credit } else { same_ledger(debit, credit) };
                    let balancing = balancing_debit || balancing_credit;
                    transfer.amount = if balancing && amount % 3 == 0 { AMOUNT_MAX } else { amount };
                    transfer.pending_id = stray_pending_id;
                    transfer.timeout = if pending { pending_timeout } else { stray_timeout };
                    transfer.ledger = ledger.unwrap_or(ledger_of(debit));
                    transfer.code = code;
                }
                TransferKind::Post | TransferKind::Void => {
                    let post = matches!(kind, TransferKind::Post);
                    flags.set(TransferFlags::POST_PENDING_TRANSFER, post);
                    flags.set(TransferFlags::VOID_PENDING_TRANSFER, !post);
                    if conflict {
                        // One flag that post and void exclude.
                        let conflicting = [
                            TransferFlags::PENDING,
                            TransferFlags::BALANCING_DEBIT,
                            TransferFlags::BALANCING_CREDIT,
                            TransferFlags::CLOSING_DEBIT,
                            TransferFlags::CLOSING_CREDIT,
                            if post {
                                TransferFlags::VOID_PENDING_TRANSFER
                            } else {
                                TransferFlags::POST_PENDING_TRANSFER
                            },
                        ];
                        flags |= conflicting[(amount % conflicting.len() as u128) as usize];
                    }
                    transfer.pending_id = if pending_target == u128::MAX - 1 { id } else { pending_target };
                    transfer.debit_account_id = if post_void_debit_zero { 0 } else { debit.min(ACCOUNT_ID_MAX) };
                    transfer.credit_account_id = if post_void_credit_zero { 0 } else { credit.min(ACCOUNT_ID_MAX) };
                    transfer.amount = if post {
                        // Half "post it all", half a specific (possibly too large) amount.
                        if amount % 2 == 0 { AMOUNT_MAX } else { amount % 23 }
                    } else if amount % 3 != 0 {
                        0
                    } else {
                        amount % 23
                    };
                    transfer.timeout = stray_timeout;
                    transfer.ledger = if set_ledger { ledger.unwrap_or(ledger_of(debit)) } else { 0 };
                    transfer.code = if set_code { code } else { 0 };
                }
            }
            transfer.flags = flags;
            (transfer, timestamp)
        })
}

fn advance_ns() -> impl Strategy<Value = u64> {
    // 1 ms to 5 s, biased towards around the pending timeouts (1 to 3 s).
    prop_oneof![
        1 => 1_000_000u64..=5_000_000_000,
        1 => 1_000_000u64..=1_000_000_000,
        1 => 900_000_000u64..=3_100_000_000,
    ]
}

/// The step at position `index` (0: the opening batch of accounts).
pub fn step(index: usize, events_max: usize) -> BoxedStrategy<GeneratedStep> {
    if index == 0 {
        // Open accounts 1..=8 so that transfers have something to move.
        let accounts: Vec<_> = (1..=OPENING_ACCOUNTS).map(|id| account_event(false, Some(id))).collect();
        return accounts
            .prop_map(|mut events| {
                // No chain through the opening batch.
                for (account, _) in &mut events {
                    account.flags.set(AccountFlags::LINKED, false);
                }
                GeneratedStep { advance_ns: 0, batch: GeneratedBatch::Accounts(events) }
            })
            .boxed();
    }
    let accounts = weighted(0.15).prop_flat_map(|imported| prop::collection::vec(account_event(imported, None), 1..=6));
    let transfers = weighted(0.1)
        .prop_flat_map(move |imported| prop::collection::vec(transfer_event(index, imported), 1..=events_max));
    let batch = prop_oneof![
        1 => accounts.prop_map(GeneratedBatch::Accounts),
        5 => transfers.prop_map(GeneratedBatch::Transfers),
    ];
    (advance_ns(), batch).prop_map(|(advance_ns, batch)| GeneratedStep { advance_ns, batch }).boxed()
}

/// An echo: the event at `to` becomes a copy or variation of the earlier event at `from` (of the
/// same kind), keeping its own `linked` and `imported` flags and timestamp choice.
#[derive(Debug, Clone)]
pub struct Echo {
    pub from: Index,
    pub to: Index,
    pub how: u8,
}

fn echo() -> impl Strategy<Value = Echo> {
    (any::<Index>(), any::<Index>(), any::<u8>()).prop_map(|(from, to, how)| Echo { from, to, how })
}

/// Applies echoes to the transfers (and accounts) of a generated scenario.
fn apply_echoes(steps: &mut [GeneratedStep], echoes: &[Echo]) {
    let mut accounts = Vec::new();
    let mut transfers = Vec::new();
    for (step, generated) in steps.iter().enumerate() {
        match &generated.batch {
            GeneratedBatch::Accounts(events) => accounts.extend((0..events.len()).map(|event| (step, event))),
            GeneratedBatch::Transfers(events) => transfers.extend((0..events.len()).map(|event| (step, event))),
        }
    }
    for echo in echoes {
        // One in five echoes accounts.
        let positions = if echo.how % 5 == 0 { &accounts } else { &transfers };
        if positions.len() < 2 {
            continue;
        }
        let (mut from, mut to) = (echo.from.index(positions.len()), echo.to.index(positions.len()));
        if from == to {
            continue;
        }
        if from > to {
            std::mem::swap(&mut from, &mut to);
        }
        if positions[to].0 == 0 {
            continue; // The opening batch stays as it is.
        }
        let ((from_step, from_event), (to_step, to_event)) = (positions[from], positions[to]);
        match (&steps[from_step].batch, &steps[to_step].batch) {
            (GeneratedBatch::Accounts(source), GeneratedBatch::Accounts(_)) => {
                let source = source[from_event].0;
                let GeneratedBatch::Accounts(target) = &mut steps[to_step].batch else { unreachable!() };
                let target = &mut target[to_event].0;
                let keep = target.flags & (AccountFlags::LINKED | AccountFlags::IMPORTED);
                let mut copy = source;
                copy.flags = AccountFlags::from_bits_retain(
                    (source.flags.bits() & !(AccountFlags::LINKED | AccountFlags::IMPORTED).bits()) | keep.bits(),
                );
                match (echo.how / 5) % 4 {
                    0 | 1 => {}
                    2 => copy.user_data_64 ^= 1,
                    _ => copy.code = 3 - copy.code.min(2),
                }
                *target = copy;
            }
            (GeneratedBatch::Transfers(_), GeneratedBatch::Transfers(_)) => {
                // Posts and voids are derived from an earlier pending transfer (or post or void).
                let derived = (echo.how / 5) % 14 >= 10;
                let (from_step, from_event) = if derived {
                    let two_phase = TransferFlags::PENDING
                        | TransferFlags::POST_PENDING_TRANSFER
                        | TransferFlags::VOID_PENDING_TRANSFER;
                    let candidates: Vec<(usize, usize)> = positions[..to]
                        .iter()
                        .copied()
                        .filter(|(step, event)| match &steps[*step].batch {
                            GeneratedBatch::Transfers(events) => events[*event].0.flags.intersects(two_phase),
                            GeneratedBatch::Accounts(_) => false,
                        })
                        .collect();
                    if candidates.is_empty() {
                        continue;
                    }
                    candidates[echo.from.index(candidates.len())]
                } else {
                    (from_step, from_event)
                };
                let GeneratedBatch::Transfers(source) = &steps[from_step].batch else { unreachable!() };
                let source = source[from_event].0;
                let GeneratedBatch::Transfers(target) = &mut steps[to_step].batch else { unreachable!() };
                let target = &mut target[to_event].0;
                *target = transfer_echo(&source, target, echo.how / 5);
            }
            _ => unreachable!("positions are of one kind"),
        }
    }
}

fn transfer_echo(source: &Transfer, target: &Transfer, how: u8) -> Transfer {
    let keep = target.flags & (TransferFlags::LINKED | TransferFlags::IMPORTED);
    let own = |flags: TransferFlags| {
        TransferFlags::from_bits_retain(
            (flags.bits() & !(TransferFlags::LINKED | TransferFlags::IMPORTED).bits()) | keep.bits(),
        )
    };
    let mut copy = Transfer { flags: own(source.flags), ..*source };
    // A fresh id in the target's batch range, for variations that must not collide.
    let fresh_id = target.id;
    match how % 14 {
        // The same transfer again (exists), or with one field changed (exists with different).
        0 | 1 => {}
        2 => copy.amount = copy.amount.wrapping_add(1),
        3 => copy.user_data_32 ^= 1,
        4 => copy.ledger ^= 3,
        5 => copy.user_data_128 ^= 2,
        6 => copy.user_data_64 ^= 1,
        7 => copy.code ^= 3,
        8 => copy.amount = copy.amount.wrapping_sub(1),
        // The same transfer under another id (a second post or void of one pending transfer).
        9 => copy.id = fresh_id,
        // A post or a void of the source (as if it were pending), or of the transfer that the
        // source posts or voids.
        _ => {
            let post = how % 14 <= 11;
            let pending_id =
                if source.flags.intersects(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER)
                {
                    source.pending_id
                } else {
                    source.id
                };
            copy = Transfer {
                id: fresh_id,
                pending_id,
                amount: match (post, how / 14 % 4) {
                    (true, 0 | 1) => AMOUNT_MAX,
                    (true, 2) => source.amount.saturating_sub(1),
                    (true, _) => source.amount,
                    (false, 0 | 1) => 0,
                    (false, 2) => source.amount.saturating_sub(1),
                    (false, _) => source.amount,
                },
                user_data_64: target.user_data_64,
                flags: own(if post {
                    TransferFlags::POST_PENDING_TRANSFER
                } else {
                    TransferFlags::VOID_PENDING_TRANSFER
                }),
                timestamp: 0,
                ..Transfer::default()
            };
            if how / 56 % 2 == 1 {
                copy.debit_account_id = source.debit_account_id;
                copy.ledger = source.ledger;
            }
        }
    }
    copy
}

/// Steps after the first are occasionally left out, and shrinking leaves out more, so that a
/// failing scenario shrinks to the few batches that matter.
pub fn scenario(steps: usize, events_max: usize) -> impl Strategy<Value = Vec<GeneratedStep>> {
    let steps = (0..steps)
        .map(|index| {
            if index == 0 {
                step(index, events_max).prop_map(Some).boxed()
            } else {
                prop::option::weighted(0.95, step(index, events_max)).boxed()
            }
        })
        .collect::<Vec<_>>();
    (steps, prop::collection::vec(echo(), 0..=steps_echoes(events_max))).prop_map(|(steps, echoes)| {
        let mut steps: Vec<GeneratedStep> = steps.into_iter().flatten().collect();
        apply_echoes(&mut steps, &echoes);
        steps
    })
}

fn steps_echoes(events_max: usize) -> usize {
    2 * events_max
}

// ---------------------------------------------------------------------------------------------
// Observations of a ledger's state, to compare two ledgers or a ledger and the model.

/// Everything lookups, balances and account transfers answer for the ids a scenario names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub accounts: Vec<Account>,
    pub transfers: Vec<Transfer>,
    pub account_transfers: Vec<Vec<Transfer>>,
    pub account_balances: Vec<Vec<AccountBalance>>,
    pub queries: Vec<Vec<Transfer>>,
    pub account_queries: Vec<Vec<Account>>,
}

/// The account filters the observation asks, for one account.
pub fn account_filters(account_id: u128) -> Vec<AccountFilter> {
    let both = AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS;
    vec![
        AccountFilter { account_id, limit: 8190, flags: both, ..AccountFilter::default() },
        AccountFilter { account_id, limit: 3, flags: both | AccountFilterFlags::REVERSED, ..AccountFilter::default() },
        AccountFilter {
            account_id,
            limit: 100,
            flags: AccountFilterFlags::DEBITS,
            code: 1,
            ..AccountFilter::default()
        },
        AccountFilter {
            account_id,
            limit: 100,
            flags: AccountFilterFlags::CREDITS,
            user_data_32: 1,
            ..AccountFilter::default()
        },
        AccountFilter {
            account_id,
            limit: 100,
            flags: both,
            timestamp_min: TIMESTAMP_START + 2_000_000_000,
            timestamp_max: TIMESTAMP_START + 12_000_000_000,
            ..AccountFilter::default()
        },
    ]
}

pub fn query_filters() -> Vec<QueryFilter> {
    vec![
        QueryFilter { limit: 8190, ..QueryFilter::default() },
        QueryFilter { limit: 5, flags: QueryFilterFlags::REVERSED, ..QueryFilter::default() },
        QueryFilter { limit: 100, ledger: 2, ..QueryFilter::default() },
        QueryFilter { limit: 100, code: 2, user_data_64: 1, ..QueryFilter::default() },
        QueryFilter {
            limit: 100,
            user_data_128: 2,
            timestamp_min: TIMESTAMP_START + 1_000_000_000,
            ..QueryFilter::default()
        },
    ]
}

pub fn observe(ledger: &Ledger, transfer_ids: &[u128]) -> Observation {
    let account_ids = account_ids();
    let mut account_transfers = Vec::new();
    let mut account_balances = Vec::new();
    for &id in &account_ids {
        for filter in account_filters(id) {
            account_transfers.push(ledger.get_account_transfers(filter));
            account_balances.push(ledger.get_account_balances(filter));
        }
    }
    Observation {
        accounts: ledger.lookup_accounts(&account_ids),
        transfers: ledger.lookup_transfers(transfer_ids),
        account_transfers,
        account_balances,
        queries: query_filters().into_iter().map(|filter| ledger.query_transfers(filter)).collect(),
        account_queries: query_filters().into_iter().map(|filter| ledger.query_accounts(filter)).collect(),
    }
}

/// Sums that may exceed `u128` (huge amounts), as (carries, low bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WideSum {
    pub high: u128,
    pub low: u128,
}

impl WideSum {
    pub fn add(&mut self, value: u128) {
        let (low, carry) = self.low.overflowing_add(value);
        self.low = low;
        self.high += u128::from(carry);
    }
}

// ---------------------------------------------------------------------------------------------
// Compact descriptions, for failure messages that a person can read.

/// One line per event: only the fields that are not zero.
pub fn describe_account(a: &Account) -> String {
    let mut parts = vec![format!("id={}", a.id)];
    for (name, value) in [
        ("dp", a.debits_pending),
        ("dpo", a.debits_posted),
        ("cp", a.credits_pending),
        ("cpo", a.credits_posted),
        ("ud128", a.user_data_128),
        ("ud64", u128::from(a.user_data_64)),
        ("ud32", u128::from(a.user_data_32)),
        ("reserved", u128::from(a.reserved)),
        ("ledger", u128::from(a.ledger)),
        ("code", u128::from(a.code)),
        ("ts", u128::from(a.timestamp)),
    ] {
        if value != 0 {
            parts.push(format!("{name}={value}"));
        }
    }
    format!("{} {:?}", parts.join(" "), a.flags)
}

pub fn describe_transfer(t: &Transfer) -> String {
    let mut parts = vec![format!("id={}", t.id)];
    for (name, value) in [
        ("dr", t.debit_account_id),
        ("cr", t.credit_account_id),
        ("amount", t.amount),
        ("pending_id", t.pending_id),
        ("ud128", t.user_data_128),
        ("ud64", u128::from(t.user_data_64)),
        ("ud32", u128::from(t.user_data_32)),
        ("timeout", u128::from(t.timeout)),
        ("ledger", u128::from(t.ledger)),
        ("code", u128::from(t.code)),
        ("ts", u128::from(t.timestamp)),
    ] {
        if value != 0 {
            let value = if value == u128::MAX { "MAX".to_string() } else { value.to_string() };
            parts.push(format!("{name}={value}"));
        }
    }
    format!("{} {:?}", parts.join(" "), t.flags)
}

/// The resolved scenario, one line per event.
pub fn describe(steps: &[Step]) -> String {
    let mut text = String::new();
    for (index, step) in steps.iter().enumerate() {
        match &step.batch {
            Batch::Accounts(events) => {
                text += &format!("step {index} @{}: create_accounts\n", step.timestamp);
                for (i, a) in events.iter().enumerate() {
                    text += &format!("  [{i}] {}\n", describe_account(a));
                }
            }
            Batch::Transfers(events) => {
                text += &format!("step {index} @{}: create_transfers\n", step.timestamp);
                for (i, t) in events.iter().enumerate() {
                    text += &format!("  [{i}] {}\n", describe_transfer(t));
                }
            }
        }
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Failures a person can act on.

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Panics inside `catch` become failures with the scenario attached, so the default hook's message
/// and backtrace on every shrinking step are noise: silence them there only.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|quiet| quiet.get()) {
                default(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into its message, without printing it.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    quiet_panics();
    let was_quiet = QUIET.with(|quiet| quiet.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|quiet| quiet.set(was_quiet));
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_default()
    })
}

/// Runs a property over a scenario: a failure or a panic comes back with the scenario, one line
/// per event, appended.
pub fn check(steps: &[Step], f: impl FnOnce() -> Result<(), TestCaseError>) -> Result<(), TestCaseError> {
    let outcome = catch(f).unwrap_or_else(|message| Err(TestCaseError::fail(format!("panicked: {message}"))));
    outcome.map_err(|error| match error {
        TestCaseError::Fail(reason) => TestCaseError::fail(format!("{reason}\nscenario:\n{}", describe(steps))),
        other => other,
    })
}
