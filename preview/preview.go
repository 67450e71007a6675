// Package preview answers "what would this filter have matched lately?"
// for the subscribe form: it holds the jobs of the last 30 days in memory,
// indexed by the values a filter requires, and counts the ones a filter
// matches by the project's own rules (matcher.Compiled.Matches,
// docs/matching.md). The api role loads it from the job records at start
// and keeps it current from the JOBS stream. It does no I/O.
package preview

import (
	"slices"
	"sync"
	"time"

	"github.com/jobalert/jobalert/matcher"
)

// Horizon is how far back a preview looks: jobs older than it are dropped.
const Horizon = 30 * 24 * time.Hour

// Week is the span of Result.Last7Days.
const Week = 7 * 24 * time.Hour

// NewestLimit is how many of the newest matches a Result lists.
const NewestLimit = 5

// Result is a filter's preview: how many recent jobs it matches, and the
// newest of them.
type Result struct {
	Last7Days  int    `json:"last_7_days"`
	Last30Days int    `json:"last_30_days"`
	Newest     []Item `json:"newest"`
}

// Item is one job of Result.Newest.
type Item struct {
	ID       string    `json:"-"`
	Title    string    `json:"title"`
	Company  string    `json:"company"`
	PostedAt time.Time `json:"posted_at"`
	URL      string    `json:"url,omitempty"`
	// Sponsorship is the job's yes, no or unknown (docs/matching.md §4a).
	Sponsorship string `json:"sponsorship"`
}

// entry is one job held.
type entry struct {
	item    Item
	at      int64 // PostedAt in Unix seconds, for the time checks
	p       *matcher.PreparedJob
	alive   bool
	aliases []string // PutAliased's, kept for compact
}

// Recent is the set of recent jobs. It is safe for concurrent use: any
// number of previews run at once, and a change waits only for them.
type Recent struct {
	mu   sync.RWMutex
	jobs []entry
	byID map[string]int32
	// alias maps a repost alias to the id of the job it names, and of
	// maps the id of a posting collapsed into another job to that job's.
	alias map[string]string
	of    map[string]string

	// Posting lists: the job indexes having each value. A job removed or
	// replaced stays in them, dead, until compact.
	tokens    map[string][]int32 // title tokens (with joins)
	companies map[string][]int32
	locComps  map[string][]int32 // location components
	remote    []int32            // workplace remote
	tags      map[string][]int32
	visa      [16][]int32 // per visa bit
	dead      int
}

// New returns an empty set.
func New() *Recent {
	return &Recent{byID: map[string]int32{}, tokens: map[string][]int32{}, companies: map[string][]int32{},
		locComps: map[string][]int32{}, tags: map[string][]int32{}, alias: map[string]string{}, of: map[string]string{}}
}

// Len returns the number of jobs held.
func (r *Recent) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byID)
}

// Put adds a job, or replaces the one held under its id. seen is when it
// was first seen; the job's time is its posted_at, or seen when it has
// none or one later than seen.
func (r *Recent) Put(j *matcher.Job, seen time.Time) { r.PutAliased(j, seen, nil) }

// PutAliased is Put for a job event of the stream, with the job's repost
// aliases (store.RepostAliases, as strings): a job one of whose aliases
// names another job held is that job, as the consumer records it
// (docs/events.md, Reposts), so a repost is not counted twice. Later
// events and the close of the collapsed id apply to that job too.
func (r *Recent) PutAliased(j *matcher.Job, seen time.Time, aliases []string) {
	at := j.PostedAt
	if at.IsZero() || at.After(seen) {
		at = seen
	}
	e := entry{
		item: Item{ID: j.ID, Title: j.Title, Company: j.Company, PostedAt: at.UTC(), URL: j.URL, Sponsorship: j.Sponsorship()},
		at:   at.Unix(), p: matcher.Prepare(j), alive: true,
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := j.ID
	if of, ok := r.of[id]; ok {
		id = of
	} else if _, held := r.byID[id]; !held {
		for _, a := range aliases {
			if other, ok := r.alias[a]; ok && other != id {
				if _, alive := r.byID[other]; alive {
					r.of[id] = other
					id = other
					break
				}
			}
		}
	}
	e.item.ID, e.aliases = id, aliases
	for _, a := range aliases {
		if _, ok := r.alias[a]; !ok {
			r.alias[a] = id
		} else if _, alive := r.byID[r.alias[a]]; !alive {
			r.alias[a] = id
		}
	}
	if i, ok := r.byID[id]; ok {
		r.jobs[i].alive = false
		r.dead++
		if len(aliases) == 0 {
			e.aliases = r.jobs[i].aliases
		}
	}
	i := int32(len(r.jobs))
	r.jobs = append(r.jobs, e)
	r.byID[id] = i
	r.post(i, e.p)
	r.maybeCompact()
}

// Remove drops the job held under id (a closed job), if any.
func (r *Recent) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if of, ok := r.of[id]; ok {
		id = of
	}
	if i, ok := r.byID[id]; ok {
		r.jobs[i].alive = false
		r.dead++
		delete(r.byID, id)
		r.maybeCompact()
	}
}

// Expire drops the jobs older than Horizon before now.
func (r *Recent) Expire(now time.Time) {
	cut := now.Add(-Horizon).Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, i := range r.byID {
		if r.jobs[i].at < cut {
			r.jobs[i].alive = false
			r.dead++
			delete(r.byID, id)
		}
	}
	r.maybeCompact()
}

func (r *Recent) post(i int32, p *matcher.PreparedJob) {
	for _, t := range p.TitleTokens {
		r.tokens[t] = append(r.tokens[t], i)
	}
	r.companies[p.Company] = append(r.companies[p.Company], i)
	seen := map[string]bool{}
	for _, l := range p.Locations {
		for _, c := range l {
			if !seen[c] {
				seen[c] = true
				r.locComps[c] = append(r.locComps[c], i)
			}
		}
	}
	if p.Remote {
		r.remote = append(r.remote, i)
	}
	for _, t := range p.Tags {
		r.tags[t] = append(r.tags[t], i)
	}
	for b := range r.visa {
		if p.Visa&(1<<b) != 0 {
			r.visa[b] = append(r.visa[b], i)
		}
	}
}

// maybeCompact rebuilds the lists once half the entries are dead.
func (r *Recent) maybeCompact() {
	if r.dead < 1024 || r.dead*2 < len(r.jobs) {
		return
	}
	old := r.jobs
	r.jobs, r.dead, r.remote, r.visa = nil, 0, nil, [16][]int32{}
	r.byID, r.tokens, r.companies = map[string]int32{}, map[string][]int32{}, map[string][]int32{}
	r.locComps, r.tags = map[string][]int32{}, map[string][]int32{}
	oldOf := r.of
	r.alias, r.of = map[string]string{}, map[string]string{}
	for _, e := range old {
		if e.alive {
			i := int32(len(r.jobs))
			r.jobs = append(r.jobs, e)
			r.byID[e.item.ID] = i
			r.post(i, e.p)
			for _, a := range e.aliases {
				r.alias[a] = e.item.ID
			}
		}
	}
	for from, to := range oldOf {
		if _, ok := r.byID[to]; ok {
			r.of[from] = to
		}
	}
}

// Preview returns what f matches among the jobs held, counted at now. It
// fails as matcher.Compile does (an unknown visa code or seniority).
func (r *Recent) Preview(f matcher.Filter, now time.Time) (Result, error) {
	c, err := matcher.Compile(f)
	if err != nil {
		return Result{}, err
	}
	week, month := now.Add(-Week).Unix(), now.Add(-Horizon).Unix()
	r.mu.RLock()
	defer r.mu.RUnlock()
	var res Result
	var newest []int32 // up to NewestLimit, newest first
	check := func(i int32) {
		e := &r.jobs[i]
		if !e.alive || e.at < month || !c.Matches(e.p) {
			return
		}
		res.Last30Days++
		if e.at >= week {
			res.Last7Days++
		}
		if len(newest) < NewestLimit || e.at > r.jobs[newest[len(newest)-1]].at {
			k, _ := slices.BinarySearchFunc(newest, e.at, func(x int32, at int64) int {
				if r.jobs[x].at > at {
					return -1
				}
				return 1
			})
			newest = slices.Insert(newest, k, i)
			if len(newest) > NewestLimit {
				newest = newest[:NewestLimit]
			}
		}
	}
	cands, keywordsDone, ok := r.candidates(c)
	if keywordsDone && len(c.Keywords) > 0 {
		// Every candidate has every keyword: check the rest only.
		rest := *c
		rest.Keywords = nil
		c = &rest
	}
	if !ok {
		for i := range r.jobs {
			check(int32(i))
		}
	} else {
		for _, i := range cands {
			check(i)
		}
	}
	res.Newest = make([]Item, len(newest))
	for k, i := range newest {
		res.Newest[k] = r.jobs[i].item
	}
	return res, nil
}

// constraint is one clause of a filter as posting lists: every job the
// filter matches is in the union of lists. n is their total length; exact
// when every job in the union satisfies the clause (a keyword's list).
type constraint struct {
	lists   [][]int32
	n       int
	keyword bool
}

// candidates returns, sorted, job indexes that hold every job c can match:
// the union of the lists of its cheapest clause, intersected with the
// single lists of its other clauses (a keyword, one company, ...), or
// false when c has no clause the lists cover and every job must be
// checked. keywordsDone reports that every keyword's list was applied, so
// every candidate has every keyword. Posting lists are in ascending index order (jobs are appended),
// so unions merge and intersections gallop.
func (r *Recent) candidates(c *matcher.Compiled) (cands []int32, keywordsDone, ok bool) {
	var cs []constraint
	add := func(lists ...[]int32) {
		n := 0
		for _, l := range lists {
			n += len(l)
		}
		cs = append(cs, constraint{lists: lists, n: n})
	}
	// Keywords: every token is a title token, each a clause of its own.
	for _, k := range c.Keywords {
		add(r.tokens[k])
		cs[len(cs)-1].keyword = true
	}
	if len(c.Companies) > 0 {
		var ls [][]int32
		for _, co := range c.Companies {
			ls = append(ls, r.companies[co])
		}
		add(ls...)
	}
	if len(c.Locations) > 0 {
		// Each filter location's components are all components of a
		// matching job location, so its first one's list holds them; a
		// lone "remote" also matches remote jobs.
		var ls [][]int32
		for _, l := range c.Locations {
			ls = append(ls, r.locComps[l[0]])
			if len(l) == 1 && l[0] == "remote" {
				ls = append(ls, r.remote)
			}
		}
		add(ls...)
	}
	if len(c.Tags) > 0 {
		var ls [][]int32
		for _, t := range c.Tags {
			ls = append(ls, r.tags[t])
		}
		add(ls...)
	}
	if c.Visa != 0 {
		var ls [][]int32
		for b := range r.visa {
			if c.Visa&(1<<b) != 0 {
				ls = append(ls, r.visa[b])
			}
		}
		add(ls...)
	}
	if len(cs) == 0 {
		return nil, false, false
	}
	slices.SortFunc(cs, func(a, b constraint) int { return a.n - b.n })
	out := union(cs[0].lists)
	keywords := 0
	if cs[0].keyword {
		keywords++
	}
	for _, c := range cs[1:] {
		if len(out) < 64 || c.n > 32*len(out) {
			break // checking the few left costs less than narrowing them
		}
		out = intersect(out, union(c.lists))
		if c.keyword {
			keywords++
		}
	}
	return out, keywords == len(c.Keywords), true
}

// union merges sorted lists into one sorted list without repeats.
func union(lists [][]int32) []int32 {
	if len(lists) == 1 {
		return lists[0]
	}
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	all := make([]int32, 0, n)
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// intersect returns the members of sorted a that are in sorted b.
func intersect(a, b []int32) []int32 {
	out := make([]int32, 0, min(len(a), len(b)))
	for _, x := range a {
		k, found := slices.BinarySearch(b, x)
		if found {
			out = append(out, x)
		}
		b = b[k:]
		if len(b) == 0 {
			break
		}
	}
	return out
}
