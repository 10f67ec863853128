package clinical

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// How a text search finds its page (docs/clinical.md, "Indexes"). There are
// two ways, and each is fast exactly where the other is slow:
//
//   - through the GIN index on `search`: the cost is one heap row per
//     submission that matches the word, whatever the page needs, so it suits
//     a rare word (a name) and grows with the table for a common one;
//   - walking a list index in page order and checking each row: the cost is
//     about page size / the share of rows that match, so it suits a common
//     word (a medicine) and does not grow with the table, but a rare word
//     walks far.
//
// planSearch picks one from the table's own statistics (pg_stats' most
// common words of `search` and their frequencies, re-read every few
// minutes; a word they do not list is rarer than every word they do, and a
// prefix adds up the listed words it covers): through the index when the
// rarest typed word matches fewer than sqrt(page × rows) submissions (where
// the two costs meet), else a walk. Through the index, a word that matches
// more than indexShare of the rows, or far more than the rarest word, is
// checked on the rows the others found (ts_match_vq, which no index serves)
// rather than collected. Whichever plan
// a search starts with has searchBudget; past that it runs the other way,
// and then once more through the index without a budget (Submissions.query).
// Every plan returns the same rows.

// searchStatsEvery is how long the word statistics are kept; statsRetry
// how long a failure to read them is.
const (
	searchStatsEvery = 5 * time.Minute
	statsRetry       = 10 * time.Second
)

// searchPlanner holds the word statistics planSearch decides by.
type searchPlanner struct {
	mu      sync.Mutex
	at      time.Time
	freq    map[string]float64 // most common words and the share of rows with each
	minFreq float64            // the smallest listed share: unlisted words are rarer
	rows    float64            // submissions in the table (pg_class.reltuples)
}

// stats returns the word statistics, re-read when older than
// searchStatsEvery. A failure to read them leaves the last ones (or none:
// every word then counts as rare and goes through the index).
func (p *searchPlanner) stats(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, now time.Time) (map[string]float64, float64, float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.freq != nil && now.Sub(p.at) < searchStatsEvery {
		return p.freq, p.minFreq, p.rows
	}
	var words []string
	var freqs []float64
	var rows float64
	err := q.QueryRow(ctx, `SELECT coalesce(s.most_common_elems::text::text[], '{}'), coalesce(s.most_common_elem_freqs, '{}'),
  greatest(c.reltuples, 0)::float8
FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = 'public' AND s.tablename = 'submissions' AND s.attname = 'search'
WHERE c.oid = 'public.submissions'::regclass`).Scan(&words, &freqs, &rows)
	if err != nil {
		// Keep what there is (or nothing: every word then counts as rare)
		// and try again in a little while, not on every search.
		p.at = now.Add(statsRetry - searchStatsEvery)
		if p.freq == nil {
			p.freq = map[string]float64{}
		}
		return p.freq, p.minFreq, p.rows
	}
	p.at = now
	// most_common_elem_freqs has one frequency per word, then the minimum,
	// the maximum and the frequency of nulls.
	p.freq, p.minFreq, p.rows = make(map[string]float64, len(words)), 0, rows
	for i, w := range words {
		if i < len(freqs) {
			p.freq[w] = freqs[i]
		}
	}
	if len(freqs) > len(words) {
		p.minFreq = freqs[len(words)]
	}
	return p.freq, p.minFreq, p.rows
}

// searchTerm is one typed word as a tsquery term.
type searchTerm struct {
	word   string
	prefix bool // matches as a prefix (words of 3 or more runes)
}

func (t searchTerm) String() string {
	if t.prefix {
		return "'" + t.word + "':*"
	}
	return "'" + t.word + "'"
}

func joinTerms(terms []searchTerm) string {
	s := make([]string, len(terms))
	for i, t := range terms {
		s[i] = t.String()
	}
	return strings.Join(s, " & ")
}

// share estimates the share of submissions that match t.
func share(t searchTerm, freq map[string]float64, minFreq float64) float64 {
	var f float64
	for w, wf := range freq {
		if w == t.word || t.prefix && strings.HasPrefix(w, t.word) {
			f += wf
		}
	}
	if f == 0 {
		return minFreq / 2 // not listed: rarer than every listed word
	}
	return min(f, 1)
}

// indexShare is the share of submissions above which a word is not looked
// up in the index even when the search goes through it: its posting list is
// long (every tenth submission or more), and checking it on the rows the
// rarer words found is cheaper than collecting it.
const indexShare = 0.1

// searchPlan says how a text search runs: through the index on the terms
// marked in index (the others checked on the rows found), or, when none is
// marked, walking in page order and checking each row.
type searchPlan struct {
	index []bool
}

func (p searchPlan) walk() bool { return !slices.Contains(p.index, true) }

// planSearch picks a plan from the statistics: through the index when the
// rarest word matches fewer than sqrt(pageSize × rows) submissions (where
// reading every match costs what walking to a full page does), with every
// word of share at most indexShare in the index condition; else a walk.
func planSearch(terms []searchTerm, freq map[string]float64, minFreq, rows float64, pageSize int) searchPlan {
	if rarestShare(terms, freq, minFreq)*rows > math.Sqrt(float64(pageSize)*max(rows, 1)) {
		return searchPlan{index: make([]bool, len(terms))}
	}
	return indexPlan(terms, freq, minFreq)
}

// indexRatio bounds, as a multiple of the rarest word's share, the share of
// another word looked up in the index with it: collecting an index entry
// costs far less than reading a heap row (about 1 to 25), so a word is worth
// collecting when its entries are fewer than 25 times the rarest word's
// rows, which it then saves reading.
const indexRatio = 25

// indexPlan goes through the index on the rarest word and on every other
// word of share at most indexShare and at most indexRatio times the rarest's.
func indexPlan(terms []searchTerm, freq map[string]float64, minFreq float64) searchPlan {
	p := searchPlan{index: make([]bool, len(terms))}
	shares := make([]float64, len(terms))
	rarest, rarestAt := math.Inf(1), 0
	for i, t := range terms {
		shares[i] = share(t, freq, minFreq)
		if shares[i] < rarest {
			rarest, rarestAt = shares[i], i
		}
	}
	for i, s := range shares {
		p.index[i] = i == rarestAt || s <= indexShare && s <= indexRatio*rarest
	}
	return p
}

// rarestShare is the estimated share of the rarest term.
func rarestShare(terms []searchTerm, freq map[string]float64, minFreq float64) float64 {
	r := 1.0
	for _, t := range terms {
		r = min(r, share(t, freq, minFreq))
	}
	return r
}

// searchSQL is the WHERE condition of a text search under plan.
func searchSQL(arg func(any) string, terms []searchTerm, plan searchPlan) string {
	var indexed []searchTerm
	for i, t := range terms {
		if plan.index[i] {
			indexed = append(indexed, t)
		}
	}
	check := func() string { return "ts_match_vq(search, " + arg(joinTerms(terms)) + "::tsquery)" }
	if len(indexed) == 0 {
		return check()
	}
	cond := "search @@ " + arg(joinTerms(indexed)) + "::tsquery"
	if len(indexed) < len(terms) {
		cond += " AND " + check()
	}
	return cond
}
