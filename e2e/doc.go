// Package e2e holds end-to-end tests that run the built binaries (acquirerd, possim and
// posagent run) as separate processes on loopback, the way a terminal runs them, and
// treat them as black boxes: the agent's local API, possim's control API and
// `acquirerd ledger` are all they look at. It has no non-test code.
package e2e
