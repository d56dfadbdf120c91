package posagent

import (
	"errors"
	"testing"
)

func TestCheckTransition(t *testing.T) {
	legal := map[[2]State]bool{
		{StateAuthorizing, StateApproved}: true, {StateAuthorizing, StateDeclined}: true,
		{StateAuthorizing, StateFailed}: true, {StateAuthorizing, StateCanceled}: true,
		{StateAuthorizing, StateStored}: true, {StateStored, StateUploading}: true, {StateStored, StateCanceled}: true,
		{StateUploading, StateApproved}: true, {StateUploading, StateDeclined}: true, {StateUploading, StateFailed}: true,
	}
	for _, from := range States {
		for _, to := range States {
			err := CheckTransition(from, to)
			if got, want := err == nil, legal[[2]State{from, to}]; got != want {
				t.Errorf("CheckTransition(%s, %s) = %v, want legal %v", from, to, err, want)
			}
			if err != nil && !errors.Is(err, ErrTransition) {
				t.Errorf("CheckTransition(%s, %s) = %v, not ErrTransition", from, to, err)
			}
		}
	}
	if err := CheckTransition("bogus", StateApproved); err == nil {
		t.Error("a transition from an unknown state is legal")
	}
}

func TestState_Final(t *testing.T) {
	for _, s := range States {
		got := s.Final()
		want := s == StateApproved || s == StateDeclined || s == StateCanceled || s == StateFailed
		if got != want {
			t.Errorf("%s.Final() = %v, want %v", s, got, want)
		}
	}
	if State("bogus").Final() {
		t.Error("an unknown state is final")
	}
	if err := CheckTransition(StateApproved, StateCanceled); err == nil || err.Error() != "illegal state transition approved → canceled: approved is final" {
		t.Errorf("message: %v", err)
	}
}

func TestParseState(t *testing.T) {
	if s, err := ParseState("stored"); err != nil || s != StateStored {
		t.Errorf("ParseState(stored) = %v, %v", s, err)
	}
	if _, err := ParseState("Stored"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("ParseState(Stored) = %v, want ErrInvalidInput", err)
	}
}
