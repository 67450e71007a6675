package matcher_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/matcher"
)

func TestTokens(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Backend Engineer", []string{"backend", "engineer"}},
		{"back-end", []string{"backend"}},
		{"full-stack", []string{"fullstack"}},
		{"H-1B", []string{"h1b"}},
		{"a-b-c", []string{"abc"}},
		{"C++ Developer", []string{"c++", "developer"}},
		{"C# and F#", []string{"c#", "and", "f#"}},
		{".NET", []string{"net"}},
		{"node.js", []string{"node", "js"}},
		{"x- -y a--b", []string{"x", "y", "a", "b"}}, // a '-' joins only with a letter or digit on both sides
		{"-lead trail-", []string{"lead", "trail"}},  // nor at either end
		{"c++-dev", []string{"c++", "dev"}},          // '+' is not a letter or digit
		{"ÜBER Straße", []string{"über", "straße"}},  // unicode.ToLower, rune by rune
		{"İstanbul", []string{"istanbul"}},           // not strings.ToLower's "i̇stanbul"
		{"日本語-エンジニア", []string{"日本語エンジニア"}},          // letters of any script join
		{"  ", nil},
		{"", nil},
		{"Back/End", []string{"back", "end"}},
		{"v2.0-beta", []string{"v2", "0beta"}},
	}
	for _, tt := range tests {
		if got := matcher.Tokens(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Tokens(%q): got %q want %q", tt.in, got, tt.want)
		}
	}
}

func TestTitleTokens(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Back End Engineer", []string{"back", "end", "backend", "engineer", "endengineer"}},
		{"Back/End", []string{"back", "end", "backend"}},
		{"Senior Backend Engineer", []string{"senior", "backend", "seniorbackend", "engineer", "backendengineer"}},
		{"Go Go", []string{"go", "gogo"}}, // no duplicates
		{"Engineer", []string{"engineer"}},
	}
	for _, tt := range tests {
		if got := matcher.TitleTokens(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("TitleTokens(%q): got %q want %q", tt.in, got, tt.want)
		}
	}
}

func TestKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Seattle ,  WA", "seattle,wa"},
		{"Seattle,,WA,", "seattle,wa"},
		{"  New   York ,NY ", "new york,ny"},
		{"San\tFrancisco,\u00a0CA", "san francisco,ca"}, // Unicode white space
		{"Acme, Inc.", "acme,inc."},
		{" , ", ""},
		{"", ""},
		{"ÜNÏ Corp", "ünï corp"},
	}
	for _, tt := range tests {
		if got := matcher.Key(tt.in); got != tt.want {
			t.Errorf("Key(%q): got %q want %q", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalVisa(t *testing.T) {
	tests := []struct{ in, want string }{
		{"H-1B", "H-1B"}, {"h1b", "H-1B"}, {"H1B visa", "H-1B"}, {"h 1 b", "H-1B"}, {"h_1.b", "H-1B"},
		{"H-1B1", "H-1B1"}, {"e3", "E-3"}, {"TN", "TN"}, {"tn visa", "TN"},
		{"O-1", "O-1"}, {"o1a", "O-1"}, {"O-1B", "O-1"},
		{"L-1", "L-1"}, {"l1a", "L-1"}, {"L1B", "L-1"}, {"j-1", "J-1"},
		{"OPT", "OPT"}, {"F1-OPT", "OPT"}, {"STEM-OPT", "STEM-OPT"}, {"stem_opt", "STEM-OPT"},
		{"GREEN-CARD", "GREEN-CARD"}, {"green card", "GREEN-CARD"}, {"GC", "GREEN-CARD"},
		{"perm", "GREEN-CARD"}, {"EB-2", "GREEN-CARD"}, {"eb3", "GREEN-CARD"},
		{"H-2A", ""}, {"", ""}, {"h1bb", ""},
	}
	for _, tt := range tests {
		got, ok := matcher.CanonicalVisa(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("CanonicalVisa(%q): got %q, %v want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestAnnualUSD(t *testing.T) {
	tests := []struct {
		s    *matcher.Salary
		want float64 // 0: unusable
	}{
		{nil, 0},
		{&matcher.Salary{Max: 150000}, 150000},
		{&matcher.Salary{Min: 100000, Max: 150000, Currency: "USD", Period: "year"}, 150000},
		{&matcher.Salary{Min: 100000}, 100000},
		{&matcher.Salary{Min: 100000, Max: -1}, 100000},
		{&matcher.Salary{Max: 80, Period: "hour"}, 166400},
		{&matcher.Salary{Max: 80, Period: "HOUR"}, 166400},
		{&matcher.Salary{Max: 10000, Period: "month"}, 120000},
		{&matcher.Salary{Max: 3000, Period: "week"}, 156000},
		{&matcher.Salary{Max: 600, Period: "day"}, 156000},
		{&matcher.Salary{Max: 80.5, Period: "hour"}, 167440},
		{&matcher.Salary{Max: 5000, Period: "fortnight"}, 0},
		{&matcher.Salary{Max: 150000, Currency: "usd"}, 150000},
		{&matcher.Salary{Max: 150000, Currency: "EUR"}, 0},
		{&matcher.Salary{}, 0},
		{&matcher.Salary{Min: -5, Max: 0}, 0},
	}
	for _, tt := range tests {
		got, ok := tt.s.AnnualUSD()
		if got != tt.want || ok != (tt.want != 0) {
			t.Errorf("AnnualUSD(%+v): got %v, %v want %v", tt.s, got, ok, tt.want)
		}
	}
}

func TestCompileRejects(t *testing.T) {
	for _, f := range []matcher.Filter{
		{Keywords: "x", VisaTypes: []string{"H-2A"}},
		{Keywords: "x", VisaTypes: []string{""}},
		{Keywords: "x", Seniority: []string{"lead"}},
		{Keywords: "x", Seniority: []string{""}},
	} {
		if _, err := matcher.Compile(f); err == nil {
			t.Errorf("Compile(%+v): got nil want an error", f)
		}
	}
}

func TestHasPositiveClause(t *testing.T) {
	tests := []struct {
		f    matcher.Filter
		want bool
	}{
		{matcher.Filter{Keywords: "go"}, true},
		{matcher.Filter{Keywords: " - "}, false},
		{matcher.Filter{ExcludeKeywords: []string{"senior"}, ExcludeCompanies: []string{"acme"}}, false},
		{matcher.Filter{MinSalary: -1}, false},
		{matcher.Filter{MinSalary: 1}, true},
		{matcher.Filter{VisaTypes: []string{"gc"}}, true},
		{matcher.Filter{Locations: []string{" , "}}, false}, // an entry that normalises to nothing is ignored
		{matcher.Filter{Tags: []string{"go"}}, true},
	}
	for _, tt := range tests {
		c, err := matcher.Compile(tt.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.HasPositiveClause(); got != tt.want {
			t.Errorf("HasPositiveClause(%+v): got %v want %v", tt.f, got, tt.want)
		}
	}
}

type matchCase struct {
	name string
	f    matcher.Filter
	j    matcher.Job
	want bool
}

// checkMatch evaluates one case with Compiled.Matches, Reference and Index.
func checkMatch(t *testing.T, tt matchCase) {
	t.Helper()
	tt.j.ID = "j"
	if tt.j.Title == "" {
		tt.j.Title = "Software Engineer"
	}
	if tt.j.Company == "" {
		tt.j.Company = "Acme"
	}
	c, err := matcher.Compile(tt.f)
	if err != nil {
		t.Fatalf("%s: Compile: %v", tt.name, err)
	}
	if got := c.Matches(matcher.Prepare(&tt.j)); got != tt.want {
		t.Errorf("%s: Matches: got %v want %v", tt.name, got, tt.want)
	}
	var want []string
	if tt.want {
		want = []string{"f"}
	}
	ref, ix := matcher.NewReference(), matcher.NewIndex()
	if err := ref.Add("f", tt.f); err != nil {
		t.Fatal(err)
	}
	if err := ix.Add("f", tt.f); err != nil {
		t.Fatal(err)
	}
	if got := ref.MatchIDs(&tt.j); !slices.Equal(got, want) {
		t.Errorf("%s: Reference: got %v want %v", tt.name, got, want)
	}
	if got := ix.MatchIDs(&tt.j); !slices.Equal(got, want) {
		t.Errorf("%s: Index: got %v want %v", tt.name, got, want)
	}
}

// TestWorkedExamples is docs/matching.md §8, row by row.
func TestWorkedExamples(t *testing.T) {
	kw := func(s string) matcher.Filter { return matcher.Filter{Keywords: s} }
	title := func(s string) matcher.Job { return matcher.Job{Title: s} }
	eng := func(locs ...string) matcher.Filter { return matcher.Filter{Keywords: "engineer", Locations: locs} }
	at := func(locs ...string) matcher.Job { return matcher.Job{Title: "Engineer", Locations: locs} }
	for _, tt := range []matchCase{
		{"1 visa", matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"H-1B"}},
			matcher.Job{Title: "Backend Engineer II", VisaTypes: []string{"H-1B", "TN"}}, true},
		{"2 join", kw("back-end engineer"), title("Back End Engineer"), true},
		{"3 no keyword joins", kw("back end"), title("Backend Engineer"), false},
		{"4 exclude", matcher.Filter{Keywords: "backend", ExcludeKeywords: []string{"senior"}}, title("Senior Backend Engineer"), false},
		{"5 exclude partly", matcher.Filter{Keywords: "backend", ExcludeKeywords: []string{"staff engineer"}}, title("Staff Backend Developer"), true},
		{"6 exclude all", matcher.Filter{Keywords: "backend", ExcludeKeywords: []string{"staff engineer"}}, title("Staff Backend Engineer"), false},
		{"7 state", eng("WA"), at("Seattle, WA"), true},
		{"8 city", eng("Seattle"), at("Seattle, WA"), true},
		{"9 state of three", eng("WA"), at("Seattle, WA, US"), true},
		{"10 run not there", eng("WA, US"), at("Seattle, WA"), false},
		{"11 remote", eng("remote"), matcher.Job{Title: "Engineer", Workplace: "remote", Locations: []string{"US"}}, true},
		{"12 hourly", matcher.Filter{Keywords: "engineer", MinSalary: 150000},
			matcher.Job{Title: "Engineer", Salary: &matcher.Salary{Max: 80, Period: "hour"}}, true},
		{"13 no salary", matcher.Filter{Keywords: "engineer", MinSalary: 150000}, title("Engineer"), false},
		{"14 c++", kw("c++"), title("C++ Developer"), true},
	} {
		checkMatch(t, tt)
	}
}

// TestRules covers each clause of docs/matching.md §3 and its precise edges.
func TestRules(t *testing.T) {
	eng := func(locs ...string) matcher.Filter { return matcher.Filter{Keywords: "engineer", Locations: locs} }
	at := func(wp string, locs ...string) matcher.Job {
		return matcher.Job{Title: "Engineer", Workplace: wp, Locations: locs}
	}
	sal := func(s matcher.Salary) matcher.Job { return matcher.Job{Title: "Engineer", Salary: &s} }
	minSal := func(n int64) matcher.Filter { return matcher.Filter{Keywords: "engineer", MinSalary: n} }
	for _, tt := range []matchCase{
		// keywords and title tokens
		{"keywords all tokens", matcher.Filter{Keywords: "senior go"}, matcher.Job{Title: "Senior Python Engineer"}, false},
		{"keywords any order", matcher.Filter{Keywords: "engineer senior"}, matcher.Job{Title: "Senior Engineer"}, true},
		{"keywords case", matcher.Filter{Keywords: "BACKEND"}, matcher.Job{Title: "backend dev"}, true},
		{"keywords hyphen joins in keywords", matcher.Filter{Keywords: "full-stack"}, matcher.Job{Title: "Full Stack Developer"}, true},
		{"keywords hyphen joins in title", matcher.Filter{Keywords: "fullstack"}, matcher.Job{Title: "Full-Stack Developer"}, true},
		{"keywords no join of three", matcher.Filter{Keywords: "fullstackdeveloper"}, matcher.Job{Title: "Full Stack Developer"}, false},
		{"keywords c#", matcher.Filter{Keywords: "C#"}, matcher.Job{Title: "c# developer"}, true},
		{"keywords c# is not c", matcher.Filter{Keywords: "c"}, matcher.Job{Title: "c# developer"}, false},
		{"keywords .net", matcher.Filter{Keywords: "net"}, matcher.Job{Title: ".NET developer"}, true},
		{"keywords node.js", matcher.Filter{Keywords: "node.js"}, matcher.Job{Title: "Node JS developer"}, true},
		{"keywords nodejs join", matcher.Filter{Keywords: "nodejs"}, matcher.Job{Title: "Node.js developer"}, true},
		{"keywords join by slash", matcher.Filter{Keywords: "backend"}, matcher.Job{Title: "Back/End Engineer"}, true},
		{"keywords h-1b", matcher.Filter{Keywords: "h1b"}, matcher.Job{Title: "H-1B friendly engineer"}, true},
		{"keywords unicode", matcher.Filter{Keywords: "über"}, matcher.Job{Title: "ÜBER Engineer"}, true},
		{"keywords no tokens", matcher.Filter{Keywords: " - ", Tags: []string{"go"}}, matcher.Job{Title: "x", Tags: []string{"go"}}, true},
		// exclude keywords
		{"exclude empty entry ignored", matcher.Filter{Keywords: "engineer", ExcludeKeywords: []string{" - ", ""}}, matcher.Job{Title: "Engineer"}, true},
		{"exclude any entry", matcher.Filter{Keywords: "engineer", ExcludeKeywords: []string{"staff", "senior"}}, matcher.Job{Title: "Senior Engineer"}, false},
		{"exclude join", matcher.Filter{Keywords: "engineer", ExcludeKeywords: []string{"backend"}}, matcher.Job{Title: "Back End Engineer"}, false},
		{"exclude only", matcher.Filter{ExcludeKeywords: []string{"senior"}}, matcher.Job{Title: "Engineer"}, true},
		{"exclude only excluded", matcher.Filter{ExcludeKeywords: []string{"senior"}}, matcher.Job{Title: "Senior Engineer"}, false},
		// visa
		{"visa alias in filter", matcher.Filter{Keywords: "engineer", VisaTypes: []string{"h1b"}}, matcher.Job{Title: "Engineer", VisaTypes: []string{"H-1B"}}, true},
		{"visa alias in job", matcher.Filter{Keywords: "engineer", VisaTypes: []string{"O-1"}}, matcher.Job{Title: "Engineer", VisaTypes: []string{"O-1A"}}, true},
		{"visa gc perm", matcher.Filter{Keywords: "engineer", VisaTypes: []string{"GREEN-CARD"}}, matcher.Job{Title: "Engineer", VisaTypes: []string{"perm"}}, true},
		{"visa none shared", matcher.Filter{Keywords: "engineer", VisaTypes: []string{"TN", "E-3"}}, matcher.Job{Title: "Engineer", VisaTypes: []string{"H-1B"}}, false},
		{"visa job has none", matcher.Filter{Keywords: "engineer", VisaTypes: []string{"H-1B"}}, matcher.Job{Title: "Engineer"}, false},
		{"visa unknown in job dropped", matcher.Filter{Keywords: "engineer", VisaTypes: []string{"H-1B"}}, matcher.Job{Title: "Engineer", VisaTypes: []string{"H-2A", "h1b"}}, true},
		{"visa H-1B is not H-1B1", matcher.Filter{Keywords: "engineer", VisaTypes: []string{"H-1B1"}}, matcher.Job{Title: "Engineer", VisaTypes: []string{"H-1B"}}, false},
		// locations
		{"loc city of three", eng("Seattle"), at("", "Seattle, WA, US"), true},
		{"loc run of three", eng("Seattle, WA"), at("", "Seattle, WA, US"), true},
		{"loc us of three", eng("US"), at("", "Austin, TX, US"), true},
		{"loc us not of two", eng("US"), at("", "Austin, TX"), false},
		{"loc ca two", eng("CA"), at("", "Fresno, CA"), true},
		{"loc ca three", eng("CA"), at("", "Toronto, ON, CA"), true},
		{"loc ca lower", eng("ca"), at("", "fresno,ca"), true},
		{"loc not contiguous", eng("Seattle, US"), at("", "Seattle, WA, US"), false},
		{"loc order", eng("WA, Seattle"), at("", "Seattle, WA"), false},
		{"loc key spacing", eng("  new   york , ny"), at("", "New York,NY"), true},
		{"loc empty components", eng("Seattle,,WA,"), at("", "Seattle, WA"), true},
		{"loc component is whole", eng("York"), at("", "New York, NY"), false},
		{"loc any entry", eng("Austin", "WA"), at("", "Seattle, WA"), true},
		{"loc any job location", eng("TX"), at("", "Seattle, WA", "Austin, TX"), true},
		{"loc run spans locations no", eng("WA, Austin"), at("", "Seattle, WA", "Austin, TX"), false},
		{"loc empty entry ignored", eng(" , ", ""), at("", "Seattle, WA"), true},
		{"loc empty entry beside one", eng("", "TX"), at("", "Seattle, WA"), false},
		{"loc job has none", eng("WA"), at(""), false},
		{"remote workplace", eng("remote"), at("remote"), true},
		{"remote workplace case", eng("Remote"), at("REMOTE"), true},
		{"remote not onsite", eng("remote"), at("onsite", "Seattle, WA"), false},
		{"remote not hybrid", eng("remote"), at("hybrid"), false},
		{"remote component any workplace", eng("remote"), at("onsite", "Remote, US"), true},
		{"remote component alone", eng("remote"), at("", "remote"), true},
		{"remote run needs the run", eng("remote, us"), at("remote", "US"), false},
		{"remote run as components", eng("remote, us"), at("hybrid", "Remote, US"), true},
		{"unknown workplace is onsite", eng("remote"), at("telework"), false},
		{"workplace not trimmed", eng("remote"), at(" remote "), false},
		{"on-site is unknown", eng("remote"), at("on-site"), false},
		{"location synonyms are not", eng("US"), at("", "Austin, TX, USA"), false},
		{"city not remote", eng("Seattle"), at("remote"), false},
		// salary
		{"salary yearly", minSal(150000), sal(matcher.Salary{Min: 100000, Max: 150000}), true},
		{"salary below", minSal(150001), sal(matcher.Salary{Min: 100000, Max: 150000}), false},
		{"salary min where max absent", minSal(100000), sal(matcher.Salary{Min: 100000}), true},
		{"salary max not min", minSal(120000), sal(matcher.Salary{Min: 130000, Max: 110000}), false},
		{"salary max zero is absent", minSal(100000), sal(matcher.Salary{Min: 100000, Max: 0}), true},
		{"salary negative max is absent", minSal(100000), sal(matcher.Salary{Min: 100000, Max: -3}), true},
		{"salary none usable", minSal(1), sal(matcher.Salary{Min: 0, Max: -3}), false},
		{"salary hourly exact", minSal(166400), sal(matcher.Salary{Max: 80, Period: "hour"}), true},
		{"salary hourly one more", minSal(166401), sal(matcher.Salary{Max: 80, Period: "hour"}), false},
		{"salary hourly decimals", minSal(167440), sal(matcher.Salary{Max: 80.5, Period: "Hour"}), true},
		{"salary monthly", minSal(120000), sal(matcher.Salary{Max: 10000, Period: "month"}), true},
		{"salary weekly", minSal(156000), sal(matcher.Salary{Max: 3000, Period: "WEEK"}), true},
		{"salary daily", minSal(156001), sal(matcher.Salary{Max: 600, Period: "day"}), false},
		{"salary unknown period", minSal(1), sal(matcher.Salary{Max: 5000, Period: "fortnight"}), false},
		{"salary usd lower", minSal(1), sal(matcher.Salary{Max: 5000, Currency: "usd"}), true},
		{"salary non-usd", minSal(1), sal(matcher.Salary{Max: 500000, Currency: "EUR"}), false},
		{"salary currency not trimmed", minSal(1), sal(matcher.Salary{Max: 500000, Currency: " USD"}), false},
		{"salary period not trimmed", minSal(1), sal(matcher.Salary{Max: 50, Period: "hour "}), false},
		{"salary absent", minSal(1), matcher.Job{Title: "Engineer"}, false},
		{"salary min zero absent", minSal(0), matcher.Job{Title: "Engineer"}, true},
		{"salary min negative absent", minSal(-10), matcher.Job{Title: "Engineer"}, true},
		{"salary non-usd no clause", minSal(0), sal(matcher.Salary{Max: 5000, Currency: "EUR"}), true},
		{"salary huge min", minSal(5_000_000_000), sal(matcher.Salary{Max: 5_000_000_000}), true},
		{"salary huge min above", minSal(5_000_000_001), sal(matcher.Salary{Max: 5_000_000_000}), false},
		// companies
		{"company key", matcher.Filter{Keywords: "engineer", Companies: []string{" ACME "}}, matcher.Job{Title: "Engineer", Company: "acme"}, true},
		{"company commas", matcher.Filter{Keywords: "engineer", Companies: []string{"Acme,Inc"}}, matcher.Job{Title: "Engineer", Company: "Acme , Inc"}, true},
		{"company other", matcher.Filter{Keywords: "engineer", Companies: []string{"Globex", "Initech"}}, matcher.Job{Title: "Engineer", Company: "Acme"}, false},
		{"company one of", matcher.Filter{Keywords: "engineer", Companies: []string{"Globex", "acme"}}, matcher.Job{Title: "Engineer", Company: "Acme"}, true},
		{"company not part", matcher.Filter{Keywords: "engineer", Companies: []string{"Acme"}}, matcher.Job{Title: "Engineer", Company: "Acme Corp"}, false},
		{"company empty entry ignored", matcher.Filter{Keywords: "engineer", Companies: []string{" "}}, matcher.Job{Title: "Engineer", Company: "Acme"}, true},
		{"exclude company", matcher.Filter{Keywords: "engineer", ExcludeCompanies: []string{"acme"}}, matcher.Job{Title: "Engineer", Company: "ACME"}, false},
		{"exclude company other", matcher.Filter{Keywords: "engineer", ExcludeCompanies: []string{"globex"}}, matcher.Job{Title: "Engineer", Company: "ACME"}, true},
		{"exclude company only", matcher.Filter{ExcludeCompanies: []string{"globex"}}, matcher.Job{Title: "Engineer", Company: "ACME"}, true},
		// seniority
		{"seniority in list", matcher.Filter{Keywords: "engineer", Seniority: []string{"senior", "staff"}}, matcher.Job{Title: "Engineer", Seniority: "Senior"}, true},
		{"seniority not in list", matcher.Filter{Keywords: "engineer", Seniority: []string{"senior"}}, matcher.Job{Title: "Engineer", Seniority: "mid"}, false},
		{"seniority job has none", matcher.Filter{Keywords: "engineer", Seniority: []string{"senior"}}, matcher.Job{Title: "Engineer"}, false},
		{"seniority job unknown", matcher.Filter{Keywords: "engineer", Seniority: []string{"senior"}}, matcher.Job{Title: "Engineer", Seniority: "lead"}, false},
		{"seniority filter case", matcher.Filter{Keywords: "engineer", Seniority: []string{"DIRECTOR"}}, matcher.Job{Title: "Engineer", Seniority: "director"}, true},
		{"seniority absent clause", matcher.Filter{Keywords: "engineer"}, matcher.Job{Title: "Engineer", Seniority: "lead"}, true},
		// tags
		{"tags shared", matcher.Filter{Keywords: "engineer", Tags: []string{"Go", "rust"}}, matcher.Job{Title: "Engineer", Tags: []string{"python", "go"}}, true},
		{"tags none shared", matcher.Filter{Keywords: "engineer", Tags: []string{"rust"}}, matcher.Job{Title: "Engineer", Tags: []string{"go"}}, false},
		{"tags key", matcher.Filter{Keywords: "engineer", Tags: []string{"ML  Ops"}}, matcher.Job{Title: "Engineer", Tags: []string{"ml ops"}}, true},
		{"tags job has none", matcher.Filter{Keywords: "engineer", Tags: []string{"go"}}, matcher.Job{Title: "Engineer"}, false},
		{"tags empty entry ignored", matcher.Filter{Keywords: "engineer", Tags: []string{""}}, matcher.Job{Title: "Engineer"}, true},
		// all clauses at once
		{"everything", matcher.Filter{
			Keywords: "backend engineer", ExcludeKeywords: []string{"staff"}, VisaTypes: []string{"h1b", "tn"},
			Locations: []string{"Austin", "WA"}, MinSalary: 150000, Companies: []string{"Starbucks"},
			ExcludeCompanies: []string{"Globex"}, Seniority: []string{"mid"}, Tags: []string{"aws"},
		}, matcher.Job{
			Title: "Backend Engineer II", Company: "Starbucks", Locations: []string{"Seattle, WA, US"},
			Workplace: "hybrid", VisaTypes: []string{"H-1B", "TN", "O-1A"},
			Salary:    &matcher.Salary{Min: 115000, Max: 160000, Currency: "USD", Period: "year"},
			Seniority: "mid", Tags: []string{"java", "python", "aws", "nosql"},
		}, true},
	} {
		checkMatch(t, tt)
	}
}

func TestReferenceLifecycle(t *testing.T) {
	ref := matcher.NewReference()
	if err := ref.Add("b", matcher.Filter{Keywords: "engineer"}); err != nil {
		t.Fatal(err)
	}
	if err := ref.Add("a", matcher.Filter{Keywords: "engineer"}); err != nil {
		t.Fatal(err)
	}
	err := ref.Add("c", matcher.Filter{VisaTypes: []string{"H-2A"}})
	if err == nil || !strings.Contains(err.Error(), "H-1B") {
		t.Fatalf("Add with an unknown visa: got %v want an error listing the codes", err)
	}
	j := &matcher.Job{ID: "j", Title: "Engineer", Company: "x"}
	if got := ref.MatchIDs(j); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("MatchIDs: got %v want [a b]", got)
	}
	if !ref.Remove("a") || ref.Remove("a") || ref.Len() != 1 {
		t.Fatalf("Remove/Len: got len %d want 1", ref.Len())
	}
}
