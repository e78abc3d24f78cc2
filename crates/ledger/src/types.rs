//! The ledger's data model: TigerBeetle's `Account` and `Transfer`, field for field, their flags,
//! the per-event results of `create_accounts` and `create_transfers`, and the query filters.

use crate::constants::OBJECT_SIZE;

/// Defines a `u16` flag set with named constants, combinable with `|` (bitflags-style, without the
/// dependency).
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$flag_meta:meta])* const $flag:ident = $bit:expr, $text:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u16);

        impl $name {
            $( $(#[$flag_meta])* pub const $flag: Self = Self(1 << $bit); )*

            /// No flag set.
            pub const NONE: Self = Self(0);
            /// Every flag this version knows; any other bit is reserved.
            pub const ALL: Self = Self(0 $( | (1 << $bit) )*);
            /// Each flag with its name in TigerBeetle's snake case, in bit order.
            pub const NAMED: &'static [(Self, &'static str)] = &[ $( (Self::$flag, $text), )* ];

            /// The flags from raw bits, keeping reserved bits (so that they can be refused).
            pub const fn from_bits_retain(bits: u16) -> Self { Self(bits) }
            /// The raw bits.
            pub const fn bits(self) -> u16 { self.0 }
            /// Whether every flag of `other` is set.
            pub const fn contains(self, other: Self) -> bool { self.0 & other.0 == other.0 }
            /// Whether any flag of `other` is set.
            pub const fn intersects(self, other: Self) -> bool { self.0 & other.0 != 0 }
            /// Whether no flag is set.
            pub const fn is_empty(self) -> bool { self.0 == 0 }
            /// Whether a bit outside the known flags is set.
            pub const fn has_reserved_bits(self) -> bool { self.0 & !Self::ALL.0 != 0 }
            /// Sets or clears `other`.
            pub fn set(&mut self, other: Self, value: bool) {
                if value { self.0 |= other.0 } else { self.0 &= !other.0 }
            }
            /// The flag whose snake-case name is `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::NAMED.iter().find(|(_, text)| *text == name).map(|(flag, _)| *flag)
            }
            /// The names of the set flags, in bit order (reserved bits have no name).
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                Self::NAMED.iter().filter(move |(flag, _)| self.contains(*flag)).map(|(_, text)| *text)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self { Self(self.0 | rhs.0) }
        }
        impl std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) { self.0 |= rhs.0 }
        }
        impl std::ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self { Self(self.0 & rhs.0) }
        }
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut set = f.debug_set();
                for name in self.names() { set.entry(&format_args!("{name}")); }
                let reserved = self.0 & !Self::ALL.0;
                if reserved != 0 { set.entry(&format_args!("reserved({reserved:#x})")); }
                set.finish()
            }
        }
    };
}

flag_set! {
    /// `Account.flags`.
    pub struct AccountFlags {
        /// The account is created together with the next event of the batch, or not at all.
        const LINKED = 0, "linked";
        /// Transfers must not make `debits_pending + debits_posted` exceed `credits_posted`.
        const DEBITS_MUST_NOT_EXCEED_CREDITS = 1, "debits_must_not_exceed_credits";
        /// Transfers must not make `credits_pending + credits_posted` exceed `debits_posted`.
        const CREDITS_MUST_NOT_EXCEED_DEBITS = 2, "credits_must_not_exceed_debits";
        /// The ledger keeps the account's balance after every transfer (`get_account_balances`).
        const HISTORY = 3, "history";
        /// The account carries a user-defined timestamp (a batch of imported events).
        const IMPORTED = 4, "imported";
        /// The account refuses transfers, except voids of its pending transfers.
        const CLOSED = 5, "closed";
    }
}

flag_set! {
    /// `Transfer.flags`.
    pub struct TransferFlags {
        /// The transfer is created together with the next event of the batch, or not at all.
        const LINKED = 0, "linked";
        /// The first phase of a two-phase transfer: the amount is reserved as pending.
        const PENDING = 1, "pending";
        /// Posts (part of) the pending transfer named by `pending_id`.
        const POST_PENDING_TRANSFER = 2, "post_pending_transfer";
        /// Voids the pending transfer named by `pending_id`.
        const VOID_PENDING_TRANSFER = 3, "void_pending_transfer";
        /// Transfers at most what keeps the debit account's debits within its credits.
        const BALANCING_DEBIT = 4, "balancing_debit";
        /// Transfers at most what keeps the credit account's credits within its debits.
        const BALANCING_CREDIT = 5, "balancing_credit";
        /// Closes the debit account (the transfer must be pending; voiding it reopens).
        const CLOSING_DEBIT = 6, "closing_debit";
        /// Closes the credit account (the transfer must be pending; voiding it reopens).
        const CLOSING_CREDIT = 7, "closing_credit";
        /// The transfer carries a user-defined timestamp (a batch of imported events).
        const IMPORTED = 8, "imported";
    }
}

flag_set! {
    /// `AccountFilter.flags`.
    pub struct AccountFilterFlags {
        /// Include transfers where the account is the debit account.
        const DEBITS = 0, "debits";
        /// Include transfers where the account is the credit account.
        const CREDITS = 1, "credits";
        /// Newest first.
        const REVERSED = 2, "reversed";
    }
}

flag_set! {
    /// `QueryFilter.flags`.
    pub struct QueryFilterFlags {
        /// Newest first.
        const REVERSED = 0, "reversed";
    }
}

/// An account: TigerBeetle's `Account`, 128 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Account {
    pub id: u128,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub reserved: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: AccountFlags,
    pub timestamp: u64,
}

/// A transfer: TigerBeetle's `Transfer`, 128 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Transfer {
    pub id: u128,
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub amount: u128,
    pub pending_id: u128,
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    /// Seconds after the transfer's timestamp at which a pending transfer expires (0: never).
    pub timeout: u32,
    pub ledger: u32,
    pub code: u16,
    pub flags: TransferFlags,
    pub timestamp: u64,
}

/// An account's balances right after a transfer touched it (accounts with `flags.history`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccountBalance {
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    /// The timestamp of the transfer (or expiry) that produced these balances.
    pub timestamp: u64,
}

/// TigerBeetle's `AccountFilter`: an account's transfers or balances in a timestamp range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccountFilter {
    pub account_id: u128,
    /// Only transfers with this `user_data_128` (0: any).
    pub user_data_128: u128,
    /// Only transfers with this `user_data_64` (0: any).
    pub user_data_64: u64,
    /// Only transfers with this `user_data_32` (0: any).
    pub user_data_32: u32,
    /// Only transfers with this `code` (0: any).
    pub code: u16,
    /// Inclusive lower bound (0: none).
    pub timestamp_min: u64,
    /// Inclusive upper bound (0: none).
    pub timestamp_max: u64,
    /// The most results (capped at `QUERY_RESULTS_MAX`); 0 gives none.
    pub limit: u32,
    pub flags: AccountFilterFlags,
}

/// TigerBeetle's `QueryFilter`: accounts or transfers whose fields equal every nonzero field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QueryFilter {
    pub user_data_128: u128,
    pub user_data_64: u64,
    pub user_data_32: u32,
    pub ledger: u32,
    pub code: u16,
    /// Inclusive lower bound (0: none).
    pub timestamp_min: u64,
    /// Inclusive upper bound (0: none).
    pub timestamp_max: u64,
    /// The most results (capped at `QUERY_RESULTS_MAX`); 0 gives none.
    pub limit: u32,
    pub flags: QueryFilterFlags,
}

const _: () = assert!(std::mem::size_of::<Account>() == OBJECT_SIZE);
const _: () = assert!(std::mem::size_of::<Transfer>() == OBJECT_SIZE);
const _: () = assert!(std::mem::align_of::<Account>() == 16);
const _: () = assert!(std::mem::align_of::<Transfer>() == 16);

/// Defines a status enum with its stable numeric code and snake-case name, in precedence order.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $code:literal, $text:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant = $code, )*
        }

        impl $name {
            /// Every status, in TigerBeetle's order of precedence (the first that applies wins).
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )* ];

            /// The stable numeric code (TigerBeetle's, where it has one).
            pub const fn code(self) -> u32 { self as u32 }

            /// The status for a numeric code.
            pub fn from_code(code: u32) -> Option<Self> {
                match code { $( $code => Some(Self::$variant), )* _ => None }
            }

            /// TigerBeetle's snake-case name.
            pub const fn name(self) -> &'static str {
                match self { $( Self::$variant => $text, )* }
            }

            /// The status whose snake-case name is `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( $text => Some(Self::$variant), )* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

status_enum! {
    /// The outcome of one event of `create_accounts`, in TigerBeetle's order of precedence.
    pub enum CreateAccountStatus {
        Created = 0, "created";
        LinkedEventFailed = 1, "linked_event_failed";
        LinkedEventChainOpen = 2, "linked_event_chain_open";
        ImportedEventExpected = 22, "imported_event_expected";
        ImportedEventNotExpected = 23, "imported_event_not_expected";
        TimestampMustBeZero = 3, "timestamp_must_be_zero";
        ImportedEventTimestampOutOfRange = 24, "imported_event_timestamp_out_of_range";
        ImportedEventTimestampMustNotAdvance = 25, "imported_event_timestamp_must_not_advance";
        ReservedField = 4, "reserved_field";
        ReservedFlag = 5, "reserved_flag";
        IdMustNotBeZero = 6, "id_must_not_be_zero";
        IdMustNotBeIntMax = 7, "id_must_not_be_int_max";
        ExistsWithDifferentFlags = 15, "exists_with_different_flags";
        ExistsWithDifferentUserData128 = 16, "exists_with_different_user_data_128";
        ExistsWithDifferentUserData64 = 17, "exists_with_different_user_data_64";
        ExistsWithDifferentUserData32 = 18, "exists_with_different_user_data_32";
        ExistsWithDifferentLedger = 19, "exists_with_different_ledger";
        ExistsWithDifferentCode = 20, "exists_with_different_code";
        Exists = 21, "exists";
        FlagsAreMutuallyExclusive = 8, "flags_are_mutually_exclusive";
        DebitsPendingMustBeZero = 9, "debits_pending_must_be_zero";
        DebitsPostedMustBeZero = 10, "debits_posted_must_be_zero";
        CreditsPendingMustBeZero = 11, "credits_pending_must_be_zero";
        CreditsPostedMustBeZero = 12, "credits_posted_must_be_zero";
        LedgerMustNotBeZero = 13, "ledger_must_not_be_zero";
        CodeMustNotBeZero = 14, "code_must_not_be_zero";
        ImportedEventTimestampMustNotRegress = 26, "imported_event_timestamp_must_not_regress";
    }
}

status_enum! {
    /// The outcome of one event of `create_transfers`, in TigerBeetle's order of precedence.
    pub enum CreateTransferStatus {
        Created = 0, "created";
        LinkedEventFailed = 1, "linked_event_failed";
        LinkedEventChainOpen = 2, "linked_event_chain_open";
        ImportedEventExpected = 56, "imported_event_expected";
        ImportedEventNotExpected = 57, "imported_event_not_expected";
        TimestampMustBeZero = 3, "timestamp_must_be_zero";
        ImportedEventTimestampOutOfRange = 58, "imported_event_timestamp_out_of_range";
        ImportedEventTimestampMustNotAdvance = 59, "imported_event_timestamp_must_not_advance";
        ReservedFlag = 4, "reserved_flag";
        IdMustNotBeZero = 5, "id_must_not_be_zero";
        IdMustNotBeIntMax = 6, "id_must_not_be_int_max";
        ExistsWithDifferentFlags = 36, "exists_with_different_flags";
        ExistsWithDifferentPendingId = 40, "exists_with_different_pending_id";
        ExistsWithDifferentTimeout = 44, "exists_with_different_timeout";
        ExistsWithDifferentDebitAccountId = 37, "exists_with_different_debit_account_id";
        ExistsWithDifferentCreditAccountId = 38, "exists_with_different_credit_account_id";
        ExistsWithDifferentAmount = 39, "exists_with_different_amount";
        ExistsWithDifferentUserData128 = 41, "exists_with_different_user_data_128";
        ExistsWithDifferentUserData64 = 42, "exists_with_different_user_data_64";
        ExistsWithDifferentUserData32 = 43, "exists_with_different_user_data_32";
        ExistsWithDifferentLedger = 67, "exists_with_different_ledger";
        ExistsWithDifferentCode = 45, "exists_with_different_code";
        Exists = 46, "exists";
        IdAlreadyFailed = 68, "id_already_failed";
        FlagsAreMutuallyExclusive = 7, "flags_are_mutually_exclusive";
        DebitAccountIdMustNotBeZero = 8, "debit_account_id_must_not_be_zero";
        DebitAccountIdMustNotBeIntMax = 9, "debit_account_id_must_not_be_int_max";
        CreditAccountIdMustNotBeZero = 10, "credit_account_id_must_not_be_zero";
        CreditAccountIdMustNotBeIntMax = 11, "credit_account_id_must_not_be_int_max";
        AccountsMustBeDifferent = 12, "accounts_must_be_different";
        PendingIdMustBeZero = 13, "pending_id_must_be_zero";
        PendingIdMustNotBeZero = 14, "pending_id_must_not_be_zero";
        PendingIdMustNotBeIntMax = 15, "pending_id_must_not_be_int_max";
        PendingIdMustBeDifferent = 16, "pending_id_must_be_different";
        TimeoutReservedForPendingTransfer = 17, "timeout_reserved_for_pending_transfer";
        ClosingTransferMustBePending = 64, "closing_transfer_must_be_pending";
        LedgerMustNotBeZero = 19, "ledger_must_not_be_zero";
        CodeMustNotBeZero = 20, "code_must_not_be_zero";
        DebitAccountNotFound = 21, "debit_account_not_found";
        CreditAccountNotFound = 22, "credit_account_not_found";
        AccountsMustHaveTheSameLedger = 23, "accounts_must_have_the_same_ledger";
        TransferMustHaveTheSameLedgerAsAccounts = 24, "transfer_must_have_the_same_ledger_as_accounts";
        PendingTransferNotFound = 25, "pending_transfer_not_found";
        PendingTransferNotPending = 26, "pending_transfer_not_pending";
        PendingTransferHasDifferentDebitAccountId = 27, "pending_transfer_has_different_debit_account_id";
        PendingTransferHasDifferentCreditAccountId = 28, "pending_transfer_has_different_credit_account_id";
        PendingTransferHasDifferentLedger = 29, "pending_transfer_has_different_ledger";
        PendingTransferHasDifferentCode = 30, "pending_transfer_has_different_code";
        ExceedsPendingTransferAmount = 31, "exceeds_pending_transfer_amount";
        PendingTransferHasDifferentAmount = 32, "pending_transfer_has_different_amount";
        PendingTransferAlreadyPosted = 33, "pending_transfer_already_posted";
        PendingTransferAlreadyVoided = 34, "pending_transfer_already_voided";
        PendingTransferExpired = 35, "pending_transfer_expired";
        ImportedEventTimestampMustNotRegress = 60, "imported_event_timestamp_must_not_regress";
        ImportedEventTimestampMustPostdateDebitAccount = 61, "imported_event_timestamp_must_postdate_debit_account";
        ImportedEventTimestampMustPostdateCreditAccount = 62, "imported_event_timestamp_must_postdate_credit_account";
        ImportedEventTimeoutMustBeZero = 63, "imported_event_timeout_must_be_zero";
        DebitAccountAlreadyClosed = 65, "debit_account_already_closed";
        CreditAccountAlreadyClosed = 66, "credit_account_already_closed";
        OverflowsDebitsPending = 47, "overflows_debits_pending";
        OverflowsCreditsPending = 48, "overflows_credits_pending";
        OverflowsDebitsPosted = 49, "overflows_debits_posted";
        OverflowsCreditsPosted = 50, "overflows_credits_posted";
        OverflowsDebits = 51, "overflows_debits";
        OverflowsCredits = 52, "overflows_credits";
        OverflowsTimeout = 53, "overflows_timeout";
        ExceedsCredits = 54, "exceeds_credits";
        ExceedsDebits = 55, "exceeds_debits";
    }
}

impl CreateAccountStatus {
    /// Whether the account exists after the event: it was created now, or it already was.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Created | Self::Exists)
    }
}

impl CreateTransferStatus {
    /// Whether the transfer exists after the event: it was created now, or it already was.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Created | Self::Exists)
    }

    /// Whether the outcome depended on the ledger's state at that moment (balance limits, which
    /// objects exist, which accounts are closed), so that the same event could succeed later
    /// (TigerBeetle's list; overflows count as permanent). The ledger
    /// remembers an id that failed this way and answers `IdAlreadyFailed` when it comes back, so a
    /// retried request can never succeed after its first attempt was reported as failed.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Self::DebitAccountNotFound
                | Self::CreditAccountNotFound
                | Self::PendingTransferNotFound
                | Self::DebitAccountAlreadyClosed
                | Self::CreditAccountAlreadyClosed
                | Self::ExceedsCredits
                | Self::ExceedsDebits
        )
    }
}

/// The result of one event of `create_accounts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CreateAccountResult {
    /// `Created`: the account's new timestamp. `Exists`-family: the existing account's timestamp.
    /// Any other status: the timestamp the event was given (the batch time it was judged at).
    pub timestamp: u64,
    pub status: CreateAccountStatus,
}

/// The result of one event of `create_transfers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CreateTransferResult {
    /// `Created`: the transfer's new timestamp. `Exists`-family: the existing transfer's
    /// timestamp. Any other status: the timestamp the event was given (the batch time it was
    /// judged at).
    pub timestamp: u64,
    pub status: CreateTransferStatus,
}

impl Account {
    /// The timeout of a pending transfer in nanoseconds.
    pub(crate) fn debits_exceed_credits(&self, amount: u128) -> bool {
        self.flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && self.debits_pending + self.debits_posted + amount > self.credits_posted
    }

    pub(crate) fn credits_exceed_debits(&self, amount: u128) -> bool {
        self.flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            && self.credits_pending + self.credits_posted + amount > self.debits_posted
    }

    /// The account's balances as a history entry at `timestamp`.
    pub(crate) fn balance_at(&self, timestamp: u64) -> AccountBalance {
        AccountBalance {
            debits_pending: self.debits_pending,
            debits_posted: self.debits_posted,
            credits_pending: self.credits_pending,
            credits_posted: self.credits_posted,
            timestamp,
        }
    }
}

impl Transfer {
    /// The timeout in nanoseconds.
    pub const fn timeout_ns(&self) -> u64 {
        self.timeout as u64 * crate::constants::NANOSECONDS_PER_SECOND
    }
}
