package envvars

import "testing"

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "a", "B": "b", "EMPTY": "", "DOLLAR": "$(A)"}
	lookup := func(n string) (string, bool) {
		v, ok := vars[n]
		return v, ok
	}
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$(A)", "a"},
		{"x-$(A)-$(B)-y", "x-a-b-y"},
		{"$(A)$(B)", "ab"},
		{"$(EMPTY)z", "z"},
		{"$(NOPE)", "$(NOPE)"},
		{"pre $(NOPE) $(A)", "pre $(NOPE) a"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$a"},
		{"$$", "$"},
		{"$$$$", "$$"},
		{"$", "$"},
		{"a$", "a$"},
		{"$A", "$A"},
		{"$1$(A)", "$1a"},
		{"$(A", "$(A"},
		{"$($(A)", "$($(A)"},
		{"$(A$(B))", "$(A$(B))"},
		{"$()", "$()"},
		{"$(DOLLAR)", "$(A)"}, // a value is not expanded again
		{"100$ and $(A)", "100$ and a"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, lookup); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
