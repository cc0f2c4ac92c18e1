package cronjob

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed standard cron expression: five fields (minute,
// hour, day of month, month, day of week) or a descriptor, with the
// semantics of the parser upstream uses (robfig/cron's ParseStandard).
type Schedule struct {
	minute, hour, dom, month, dow uint64
	// A field written as * (or ?) matters for the day rule: when either day
	// field is a star, both must match; otherwise either may.
	domStar, dowStar bool
	every            time.Duration // for "@every <duration>"
}

type bounds struct {
	min, max int
	names    map[string]int
}

var (
	minutes = bounds{0, 59, nil}
	hours   = bounds{0, 23, nil}
	doms    = bounds{1, 31, nil}
	months  = bounds{1, 12, map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}}
	dows = bounds{0, 6, map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

var descriptors = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// ParseSchedule parses spec. Time zone prefixes (CRON_TZ=, TZ=) are
// refused: a CronJob's zone belongs in spec.timeZone, as upstream's
// validation insists.
func ParseSchedule(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, errors.New("CRON_TZ and TZ are not supported in the schedule, use spec.timeZone instead")
	}
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("failed to parse duration %s: %w", d, err)
		}
		return &Schedule{every: max(dur.Truncate(time.Second), time.Second)}, nil
	}
	if strings.HasPrefix(spec, "@") {
		d, ok := descriptors[spec]
		if !ok {
			return nil, fmt.Errorf("unrecognized descriptor: %s", spec)
		}
		spec = d
	}
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return nil, fmt.Errorf("expected exactly 5 fields, found %d: %s", len(fields), spec)
	}
	s := &Schedule{}
	var err error
	targets := []*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i, b := range []bounds{minutes, hours, doms, months, dows} {
		var star bool
		if *targets[i], star, err = parseField(fields[i], b); err != nil {
			return nil, err
		}
		switch i {
		case 2:
			s.domStar = star
		case 4:
			s.dowStar = star
		}
	}
	return s, nil
}

// parseField reads a comma-separated list of "*", "N", "N-M", each with an
// optional "/step".
func parseField(field string, b bounds) (uint64, bool, error) {
	var bits uint64
	star := false
	for _, expr := range strings.Split(field, ",") {
		rng, stepStr, hasStep := strings.Cut(expr, "/")
		lo, hi := b.min, b.max
		isStar := rng == "*" || rng == "?"
		if !isStar {
			a, z, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, b); err != nil {
				return 0, false, err
			}
			hi = lo
			if isRange {
				if hi, err = value(z, b); err != nil {
					return 0, false, err
				}
			} else if hasStep {
				hi = b.max // "N/step" runs from N to the end
			}
		}
		step := 1
		if hasStep {
			var err error
			if step, err = strconv.Atoi(stepStr); err != nil || step <= 0 {
				return 0, false, fmt.Errorf("invalid step %q in %q", stepStr, expr)
			}
		}
		if lo < b.min || hi > b.max || lo > hi {
			return 0, false, fmt.Errorf("%q is out of range %d-%d", expr, b.min, b.max)
		}
		if isStar && step == 1 {
			star = true
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, star, nil
}

func value(s string, b bounds) (int, error) {
	if v, ok := b.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %w", s, err)
	}
	return v, nil
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

func (s *Schedule) dayMatches(t time.Time) bool {
	d, w := has(s.dom, t.Day()), has(s.dow, int(t.Weekday()))
	if s.domStar || s.dowStar {
		return d && w
	}
	return d || w
}

// Next is the first activation strictly after t, in t's location; zero if
// there is none within five years (such as "0 0 30 2 *").
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return t.Add(s.every - time.Duration(t.Nanosecond())).Truncate(time.Second)
	}
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.Year() + 5
	for t.Year() <= limit {
		y, mo, d := t.Date()
		switch {
		case !has(s.month, int(mo)):
			t = time.Date(y, mo+1, 1, 0, 0, 0, 0, loc)
		case !s.dayMatches(t):
			t = time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
		case !has(s.hour, t.Hour()):
			t = time.Date(y, mo, d, t.Hour()+1, 0, 0, 0, loc)
		case !has(s.minute, t.Minute()):
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}
