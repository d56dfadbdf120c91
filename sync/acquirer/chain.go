package acquirer

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/wire"
)

// VerifyJournalRecord is the ChainVerifier of posagent's journal: it rebuilds the record's
// canonical entry (offline.Entry, the contract shared with the terminal), recomputes its
// hash over the entry and prev_hash (offline.ChainHash; the first record chains onto
// offline.GenesisHash), and checks the record's HMAC and, when the credential is sent, its
// credential tag, with keys derived from the terminal's provisioned secret exactly as the
// terminal derives them (offline.NewKey). It returns "" for a genuine record, else the
// reason, which never contains key material.
func VerifyJournalRecord(secret []byte, rec wire.Record) string {
	key, err := offline.NewKey(secret)
	if err != nil {
		return "the terminal's provisioned secret is not a journal key"
	}
	prev := offline.GenesisHash
	if rec.PrevHash != "" {
		if prev, err = hex.DecodeString(rec.PrevHash); err != nil || len(prev) != len(offline.GenesisHash) {
			return "prev_hash is not 64 hex digits"
		}
	}
	if rec.Sequence == 1 && !bytes.Equal(prev, offline.GenesisHash) {
		return "sequence 1 must chain onto the genesis hash (64 zeros)"
	}
	var tag []byte
	if rec.CredentialTag != "" {
		if tag, err = hex.DecodeString(rec.CredentialTag); err != nil {
			return "credential_tag is not hex"
		}
	}
	if rec.Credential != "" && !hmac.Equal(key.CredentialTag([]byte(rec.Credential)), tag) {
		return "credential does not match the credential tag the chain covers"
	}
	e := offline.Entry{
		Sequence: rec.Sequence, CapturedAt: rec.CapturedAt, Amount: rec.Amount, ID: rec.ID, Terminal: rec.Terminal,
		IdempotencyKey: rec.IdempotencyKey, Reference: rec.Reference, Currency: rec.Currency,
		Method: posagent.Method(rec.Method), Scheme: posagent.Scheme(rec.Scheme), CredentialTag: tag,
		Kind: posagent.Kind(rec.Kind), Parent: rec.Parent,
	}
	if rec.CapturedAt.Nanosecond()%int(time.Millisecond) != 0 {
		return "captured_at has more than millisecond precision; the chain covers milliseconds"
	}
	canon, err := e.MarshalBinary()
	if err != nil {
		return fmt.Sprintf("record cannot be encoded: %v", err)
	}
	hash := offline.ChainHash(canon, prev)
	got, err := hex.DecodeString(rec.Hash)
	if err != nil || !hmac.Equal(got, hash) {
		return "hash does not match the record's content (changed after it was journaled?)"
	}
	mac, err := hex.DecodeString(rec.MAC)
	if err != nil || !hmac.Equal(mac, key.RecordMAC(hash)) {
		return "mac does not match: the record was not written with this terminal's key"
	}
	return ""
}
