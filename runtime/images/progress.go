package images

import (
	"fmt"
	"io"
	"time"
)

// progressEvery spaces the progress lines: often enough to show an import
// of hundreds of megabytes is alive, rarely enough to stay readable in a log.
const progressEvery = time.Second

// progressReader counts the bytes an import reads and reports them in plain
// lines rather than a redrawn terminal line, since `image import` output
// often goes to a log or through ssh.
type progressReader struct {
	r    io.Reader
	w    io.Writer
	n    int64
	last time.Time
}

func newProgressReader(r io.Reader, w io.Writer) *progressReader {
	return &progressReader{r: r, w: w, last: time.Now()}
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if now := time.Now(); now.Sub(p.last) >= progressEvery {
		p.last = now
		fmt.Fprintf(p.w, "read %s\n", HumanBytes(p.n))
	}
	return n, err
}

func (p *progressReader) finish() {
	fmt.Fprintf(p.w, "read %s in total\n", HumanBytes(p.n))
}

// HumanBytes formats a byte count with binary units, as `image ls` and the
// import progress show sizes.
func HumanBytes(n int64) string {
	if n < 0 {
		return "-"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
