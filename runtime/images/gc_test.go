package images

import (
	"testing"
	"time"
)

func TestToFree(t *testing.T) {
	p := GCPolicy{HighThresholdPercent: 85, LowThresholdPercent: 80}
	for _, tc := range []struct {
		name                string
		policy              GCPolicy
		capacity, available uint64
		want                int64
	}{
		{"below high", p, 1000, 200, 0},
		{"at high", p, 1000, 150, 50},
		{"above high", p, 1000, 100, 100},
		{"disabled", GCPolicy{HighThresholdPercent: 100, LowThresholdPercent: 80}, 1000, 0, 0},
		{"everything", GCPolicy{HighThresholdPercent: 1}, 1000, 900, 100},
		{"no filesystem", p, 0, 0, 0},
	} {
		if got := ToFree(tc.policy, tc.capacity, tc.available); got != tc.want {
			t.Errorf("%s: ToFree = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	cands := []Candidate{
		{Name: "used", Size: 500, InUse: true, Created: ago(time.Hour), LastUsed: ago(time.Hour)},
		{Name: "new", Size: 500, Created: ago(time.Minute), LastUsed: ago(time.Minute)},
		{Name: "recent", Size: 100, Created: ago(time.Hour), LastUsed: ago(10 * time.Minute)},
		{Name: "old-small", Size: 10, Created: ago(2 * time.Hour), LastUsed: ago(time.Hour)},
		{Name: "old-big", Size: 300, Created: ago(2 * time.Hour), LastUsed: ago(time.Hour)},
	}
	names := func(cs []Candidate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	for _, tc := range []struct {
		toFree int64
		want   []string
	}{
		{0, nil},
		{1, []string{"old-big"}},
		{300, []string{"old-big"}},
		{301, []string{"old-big", "old-small"}},
		{311, []string{"old-big", "old-small", "recent"}},
		// Never the image in use nor the one younger than the minimum age.
		{10000, []string{"old-big", "old-small", "recent"}},
	} {
		got := names(Select(cands, tc.toFree, 2*time.Minute, now))
		if len(got) != len(tc.want) {
			t.Errorf("toFree %d: selected %v, want %v", tc.toFree, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("toFree %d: selected %v, want %v", tc.toFree, got, tc.want)
				break
			}
		}
	}
}

func TestGCPolicyValidate(t *testing.T) {
	if err := DefaultGCPolicy.Validate(); err != nil {
		t.Errorf("default policy: %v", err)
	}
	for _, p := range []GCPolicy{
		{HighThresholdPercent: 101},
		{HighThresholdPercent: 50, LowThresholdPercent: 60},
		{HighThresholdPercent: 50, LowThresholdPercent: -1},
		{HighThresholdPercent: 50, MinAge: -time.Second},
	} {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
