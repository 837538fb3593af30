//go:build race

package crashsuite

// raceEnabled says the tests run with the race detector, so the server is
// built with it too.
const raceEnabled = true
