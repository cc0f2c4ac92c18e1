package envvars

import "strings"

// expand replaces each $(NAME) in s with lookup(NAME), following the rules
// of Kubernetes' variable expansion:
//
//   - $$ is an escaped '$' and becomes a single '$' (so $$(X) gives $(X));
//   - $(NAME) whose NAME lookup does not know is left as written;
//   - a '$' followed by anything else, an unterminated "$(" and a trailing
//     '$' are copied through unchanged.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; next {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				// No closing parenthesis: keep "$(" and go on
				// scanning right after it.
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
			b.WriteByte(next)
			i++
		}
	}
	return b.String()
}
