-- The journal's first schema. Applied once, in its own transaction, by Open.

-- Facts about this journal file: its id, the terminal it belongs to, a technician hold.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

-- Counters advanced in the same transaction as the insert they number, so a rolled-back
-- insert leaves no gap. 'sequence' is the last sequence number assigned.
CREATE TABLE counter (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counter (name, value) VALUES ('sequence', 0);

-- One row per sale. seq is the per-terminal sequence (and the rowid: sequence order is
-- storage order). Times are Unix milliseconds UTC.
CREATE TABLE sales (
	seq               INTEGER PRIMARY KEY,
	id                TEXT    NOT NULL UNIQUE,
	terminal          TEXT    NOT NULL,
	idempotency_key   TEXT    NOT NULL UNIQUE,
	reference         TEXT    NOT NULL,
	captured_at       INTEGER NOT NULL,
	amount            INTEGER NOT NULL CHECK (amount > 0),
	currency          TEXT    NOT NULL,
	method            TEXT    NOT NULL,
	scheme            TEXT    NOT NULL,
	credential        BLOB,                 -- nonce || AES-256-GCM ciphertext, AAD = id
	credential_tag    BLOB,                 -- HMAC of the plaintext, covered by the chain
	credential_masked TEXT    NOT NULL,
	offline           INTEGER NOT NULL,
	state             TEXT    NOT NULL CHECK (state IN ('authorizing','stored','uploading','approved','declined','canceled','failed')),
	attempts          INTEGER NOT NULL DEFAULT 0,
	last_error        TEXT    NOT NULL DEFAULT '',
	updated_at        INTEGER NOT NULL,
	acked_at          INTEGER,              -- the acquirer holds the record
	prev_hash         BLOB    NOT NULL,
	hash              BLOB    NOT NULL,
	mac               BLOB    NOT NULL
);
CREATE INDEX sales_state ON sales (state);
CREATE INDEX sales_unacked ON sales (seq) WHERE acked_at IS NULL;

-- Every state change, for show and for the technician.
CREATE TABLE history (
	id         INTEGER PRIMARY KEY,
	seq        INTEGER NOT NULL REFERENCES sales (seq) ON DELETE CASCADE,
	at         INTEGER NOT NULL,
	from_state TEXT    NOT NULL,
	to_state   TEXT    NOT NULL,
	note       TEXT    NOT NULL
);
CREATE INDEX history_seq ON history (seq);

-- The last purged record: where Verify starts once older records are gone.
CREATE TABLE anchor (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	seq       INTEGER NOT NULL,
	hash      BLOB    NOT NULL,
	purged_at INTEGER NOT NULL
);
