-- The shift reports: a Z report (a closed shift) is stored with its totals, so they survive
-- the purge of the records they count. Applied once, by Open.

-- One row per closed shift, numbered 1, 2, … with no gaps (number is assigned in the
-- closing transaction). The shift holds the records with sequence in (after_seq, last_seq]
-- and its period is [from_ms, to_ms); the next shift starts where this one ends. totals is
-- the ShiftTotals as JSON. idempotency_key (NULL when the caller gave none) makes a
-- retried close return the same Z report.
CREATE TABLE shifts (
	number          INTEGER PRIMARY KEY,
	idempotency_key TEXT    UNIQUE,
	from_ms         INTEGER NOT NULL,
	to_ms           INTEGER NOT NULL CHECK (to_ms >= from_ms),
	after_seq       INTEGER NOT NULL,
	last_seq        INTEGER NOT NULL CHECK (last_seq >= after_seq),
	closed_at       INTEGER NOT NULL,
	totals          TEXT    NOT NULL
);
