package coordclient

import "testing"

// Logs name a session by its public part only: the secret after the dot
// lets whoever holds it act for the session.
func TestPublicIDDropsTheSecret(t *testing.T) {
	for in, want := range map[string]string{
		"674ba23043fbed11.945f75e3be631f20e0a5c1f8441037d7": "674ba23043fbed11",
		"674ba23043fbed11": "674ba23043fbed11",
		"":                 "",
	} {
		if got := publicID(in); got != want {
			t.Errorf("publicID(%q) = %q, want %q", in, got, want)
		}
	}
}
