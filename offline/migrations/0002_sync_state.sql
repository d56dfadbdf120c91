-- What the uplink remembers between runs (the results feed's cursor, …), in the journal so
-- it survives exactly as the records do. Applied once, in its own transaction, by Open.
CREATE TABLE sync_state (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
