//go:build race

package qr

// raceEnabled is true in tests built with -race, which decode several times slower.
const raceEnabled = true
