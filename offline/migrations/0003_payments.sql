-- One ledger: the POS app's payments live in the journal, beside their sales, and change in
-- the same transactions; reversals of online authorizations whose outcome stayed unknown
-- are journaled here until the acquirer acknowledges them. Applied once, in its own
-- transaction, by Open.

-- A payment of the local API. state is authoritative (the journal keeps it in step with
-- the sale's state after upload); data is the rest of the payment as the agent shows it
-- (JSON, opaque to the journal). sale_id is the sale record once there is one.
CREATE TABLE payments (
	id              TEXT    PRIMARY KEY,
	idempotency_key TEXT    NOT NULL UNIQUE,
	sale_id         TEXT,
	state           TEXT    NOT NULL,
	done            INTEGER NOT NULL,
	data            TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);
CREATE INDEX payments_open ON payments (done) WHERE done = 0;
CREATE INDEX payments_sale ON payments (sale_id);

-- A reversal decided by the terminal (the authorization's outcome stayed unknown past its
-- deadline, or the cashier gave up while the customer confirmed). Sent until acked_at is
-- set; kept after that as proof.
CREATE TABLE reversals (
	sale_id    TEXT    PRIMARY KEY,
	seq        INTEGER NOT NULL,
	reason     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	last_error TEXT    NOT NULL DEFAULT '',
	acked_at   INTEGER,
	answer     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX reversals_unacked ON reversals (created_at) WHERE acked_at IS NULL;
