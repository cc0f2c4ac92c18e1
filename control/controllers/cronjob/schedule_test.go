package cronjob

import (
	"testing"
	"time"
)

func TestScheduleNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct{ spec, from, want string }{
		{"* * * * *", "2026-03-01T10:00:30Z", "2026-03-01T10:01:00Z"},
		{"*/15 * * * *", "2026-03-01T10:01:00Z", "2026-03-01T10:15:00Z"},
		{"5 4 * * sun", "2026-03-02T00:00:00Z", "2026-03-08T04:05:00Z"},
		{"0 0 1,15 * *", "2026-03-02T00:00:00Z", "2026-03-15T00:00:00Z"},
		// Both day fields restricted: either matches (the 13th, or a Friday).
		{"0 0 13 * 5", "2026-03-01T00:00:00Z", "2026-03-06T00:00:00Z"},
		{"30 9-17/4 * * mon-fri", "2026-03-06T18:00:00Z", "2026-03-09T09:30:00Z"},
		{"@hourly", "2026-03-01T10:59:59Z", "2026-03-01T11:00:00Z"},
		{"@yearly", "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"@every 90s", "2026-03-01T10:00:00.5Z", "2026-03-01T10:01:30Z"},
	}
	for _, c := range cases {
		s, err := ParseSchedule(c.spec)
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if got := s.Next(at(c.from)); !got.Equal(at(c.want)) {
			t.Errorf("%q after %s = %s, want %s", c.spec, c.from, got.Format(time.RFC3339), c.want)
		}
	}
}

func TestScheduleNextInZone(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSchedule("0 9 * * *")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Next(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).In(loc))
	if want := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("09:00 Paris = %s, want %s", got.UTC(), want)
	}
}

func TestParseScheduleRejects(t *testing.T) {
	for _, spec := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
		"* * * * 7", "*/0 * * * *", "5-1 * * * *", "@often", "TZ=UTC * * * * *", "CRON_TZ=Europe/Paris 0 9 * * *",
	} {
		if _, err := ParseSchedule(spec); err == nil {
			t.Errorf("%q parsed, want an error", spec)
		}
	}
}
