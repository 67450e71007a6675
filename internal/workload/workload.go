// Package workload draws the realistic saved filters and jobs of the
// benchmarks (docs/benchmarks.md, "The generator"): `jobalert bench gen`
// writes them to files, and the matcher's benchmarks and tests, the
// pipeline benchmark and the fault harness use them in memory. It is pure
// (no I/O) and imports only matcher, so any package's tests may use it
// without pulling in the rest of the service.
package workload

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/jobalert/jobalert/matcher"
)

// Generator draws realistic saved filters and jobs. Filter(i) and Job(i)
// depend only on the profile, the seed and i, so files can be produced in
// any order or in parallel.
type Generator struct {
	profile string
	seed    uint64

	roles     zipf // over roles
	searches  zipf // search phrase of a role (first ones most common)
	cities    zipf
	companies zipf
	domains   zipf
	skills    zipf
	companyNm []string
}

// NewGenerator returns the generator of a profile, "popular" or "sparse".
func NewGenerator(profile string, seed uint64) (*Generator, error) {
	if profile != "popular" && profile != "sparse" {
		// The message is the one `jobalert bench gen` has always printed.
		return nil, fmt.Errorf("bench gen: unknown profile %q (want popular or sparse)", profile)
	}
	g := &Generator{
		profile:   profile,
		seed:      seed,
		roles:     newZipf(len(roles), 1.0),
		searches:  newZipf(4, 1.2),
		cities:    newZipf(len(cities), 1.0),
		companies: newZipf(nCompanies, 1.05),
		domains:   newZipf(len(domains), 0.9),
		skills:    newZipf(len(skills), 1.0),
	}
	g.companyNm = companyNames(nCompanies)
	return g, nil
}

func (g *Generator) rng(kind, i uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.seed^kind*0x9e3779b97f4a7c15, i))
}

// Filter returns the i-th filter.
func (g *Generator) Filter(i int) matcher.Entry {
	r := g.rng(1, uint64(i))
	f := matcher.Filter{}
	role := &roles[g.roles.draw(r)]
	search := role.searches[min(g.searches.draw(r), len(role.searches)-1)]
	sparse := g.profile == "sparse"

	switch x := r.Float64(); {
	case sparse && x < 0.995:
		// A specific search: a role in a team or domain, or a skill and a role.
		if r.IntN(2) == 0 {
			f.Keywords = domains[g.domains.draw(r)] + " " + search
		} else {
			f.Keywords = skills[g.skills.draw(r)] + " " + search
		}
	case !sparse && x < 0.06:
		f.Keywords = skills[g.skills.draw(r)] // "golang", "kubernetes"
	case !sparse && x < 0.18:
		f.Keywords = pick(r, []string{"senior ", "staff ", "principal ", "junior ", "lead "}) + search
	case x < 0.985:
		f.Keywords = search
	default:
		// no keywords: a company watcher or a visa/location alert
	}
	if r.Float64() < 0.10 {
		f.ExcludeKeywords = pickN(r, [][]string{{"senior"}, {"staff", "principal"}, {"manager"}, {"contract"}, {"intern"}, {"lead"}, {"director"}, {"clearance"}})
	}

	// Locations: none, states, cities, remote.
	x := r.Float64()
	if sparse {
		x = 0.55 + 0.23*x // sparse searches name a city
	}
	switch {
	case x < 0.35:
	case x < 0.55:
		n := 1 + r.IntN(2)
		for range n {
			f.Locations = append(f.Locations, cities[g.cities.draw(r)].state)
		}
	case x < 0.78:
		c := cities[g.cities.draw(r)]
		if r.IntN(2) == 0 {
			f.Locations = []string{c.name + ", " + c.state}
		} else {
			f.Locations = []string{c.name}
		}
		if !sparse && r.IntN(4) == 0 {
			f.Locations = append(f.Locations, "remote")
		}
	default:
		f.Locations = []string{pick(r, []string{"remote", "Remote", "remote"})}
		if r.IntN(3) == 0 {
			f.Locations = append(f.Locations, cities[g.cities.draw(r)].state)
		}
	}

	if r.Float64() < 0.40 {
		f.VisaTypes = []string{pick(r, []string{"H-1B", "H-1B", "H-1B", "h1b", "H1B"})}
		for _, v := range []struct {
			code string
			p    float64
		}{{"TN", 0.10}, {"O-1", 0.10}, {"GREEN-CARD", 0.10}, {"STEM-OPT", 0.08}, {"OPT", 0.05}, {"E-3", 0.04}, {"L-1", 0.03}, {"H-1B1", 0.02}} {
			if r.Float64() < v.p {
				f.VisaTypes = append(f.VisaTypes, v.code)
			}
		}
		if r.Float64() < 0.04 { // not H-1B at all
			f.VisaTypes = []string{pick(r, []string{"TN", "E-3", "gc", "O-1", "stem-opt"})}
		}
	}
	if r.Float64() < 0.30 {
		f.MinSalary = int64(80_000 + 10_000*r.IntN(18))
	}
	pc := 0.04
	if sparse {
		pc = 0.10
	}
	if r.Float64() < pc || f.Keywords == "" && (sparse || r.IntN(2) == 0) {
		n := 1 + r.IntN(3)
		for range n {
			f.Companies = append(f.Companies, g.companyNm[g.companies.draw(r)])
		}
	}
	if r.Float64() < 0.03 {
		f.ExcludeCompanies = []string{g.companyNm[g.companies.draw(r)]}
	}
	if r.Float64() < 0.20 {
		f.Seniority = pickN(r, [][]string{{"senior"}, {"senior", "staff"}, {"mid", "senior"}, {"junior", "mid"}, {"staff", "principal"}, {"intern"}, {"manager", "director"}})
	}
	if r.Float64() < 0.08 {
		n := 1 + r.IntN(2)
		for range n {
			f.Tags = append(f.Tags, role.tags[r.IntN(len(role.tags))])
		}
	}
	if f.Keywords == "" && len(f.Companies) == 0 && len(f.Locations) == 0 && len(f.VisaTypes) == 0 {
		f.VisaTypes = []string{"H-1B"}
	}
	return matcher.Entry{ID: fmt.Sprintf("f%d", i), Filter: f}
}

// Job returns the i-th job.
func (g *Generator) Job(i int) matcher.Job {
	r := g.rng(2, uint64(i))
	role := &roles[g.roles.draw(r)]
	title := role.titles[min(g.searches.draw(r), len(role.titles)-1)]
	lvl := levels[drawWeighted(r, levelWeights)]
	if role.manager && lvl.prefix != "Senior " && lvl.prefix != "" {
		lvl = levels[0]
	}
	title = lvl.prefix + title + lvl.suffix
	if r.Float64() < 0.35 || g.profile == "sparse" && r.Float64() < 0.8 {
		d := domainTitle(domains[g.domains.draw(r)])
		switch r.IntN(3) {
		case 0:
			title += ", " + d
		case 1:
			title += " - " + d
		default:
			title += " (" + d + ")"
		}
	}
	if g.profile == "sparse" && r.IntN(3) == 0 {
		title = skillTitle(skills[g.skills.draw(r)]) + " " + title
	}
	company := g.companyNm[g.companies.draw(r)]
	j := matcher.Job{
		ID:       fmt.Sprintf("j%d", i),
		Title:    title,
		Company:  company,
		URL:      fmt.Sprintf("https://jobs.example.com/%d", i),
		PostedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 97 * time.Second),
	}
	if lvl.seniority != "" && r.Float64() < 0.85 {
		j.Seniority = lvl.seniority
	}
	switch x := r.Float64(); {
	case x < 0.30:
		j.Workplace = "remote"
		j.Locations = []string{pick(r, []string{"US", "Remote, US", "United States"})}
	case x < 0.55:
		j.Workplace = "hybrid"
	default:
		j.Workplace = "onsite"
	}
	if j.Workplace != "remote" {
		c := cities[g.cities.draw(r)]
		if r.IntN(2) == 0 {
			j.Locations = []string{c.name + ", " + c.state + ", US"}
		} else {
			j.Locations = []string{c.name + ", " + c.state}
		}
		if r.Float64() < 0.10 {
			c2 := cities[g.cities.draw(r)]
			j.Locations = append(j.Locations, c2.name+", "+c2.state)
		}
	}
	if r.Float64() < 0.35 {
		if r.Float64() < 0.9 {
			j.VisaTypes = append(j.VisaTypes, pick(r, []string{"H-1B", "H-1B", "H1B", "h-1b"}))
		}
		for _, v := range []struct {
			code string
			p    float64
		}{{"TN", 0.30}, {"O-1A", 0.15}, {"GREEN-CARD", 0.20}, {"STEM-OPT", 0.12}, {"OPT", 0.08}, {"E-3", 0.05}, {"L-1", 0.05}} {
			if r.Float64() < v.p {
				j.VisaTypes = append(j.VisaTypes, v.code)
			}
		}
		if len(j.VisaTypes) == 0 {
			j.VisaTypes = []string{"TN"}
		}
	}
	if r.Float64() < 0.60 {
		base := lvl.pay * role.pay * math.Exp(r.NormFloat64()*0.18)
		switch x := r.Float64(); {
		case x < 0.80:
			lo := math.Round(base*0.85/1000) * 1000
			j.Salary = &matcher.Salary{Min: lo, Max: math.Round(base*1.15/1000) * 1000, Currency: "USD", Period: "year"}
			if r.IntN(4) == 0 {
				j.Salary.Currency, j.Salary.Period = "", "" // the defaults
			}
		case x < 0.95:
			hr := math.Round(base/2080*2) / 2
			j.Salary = &matcher.Salary{Min: hr * 0.85, Max: hr, Currency: "USD", Period: "hour"}
		case x < 0.98:
			j.Salary = &matcher.Salary{Max: math.Round(base / 12), Currency: "USD", Period: "month"}
		default:
			j.Salary = &matcher.Salary{Min: math.Round(base * 0.9), Max: math.Round(base * 1.2), Currency: pick(r, []string{"CAD", "EUR", "GBP"}), Period: "year"}
		}
	}
	n := 2 + r.IntN(4)
	for range n {
		t := role.tags[r.IntN(len(role.tags))]
		if !contains(j.Tags, t) {
			j.Tags = append(j.Tags, t)
		}
	}
	return j
}

func domainTitle(d string) string {
	if d == "" {
		return ""
	}
	return strings.ToUpper(d[:1]) + d[1:]
}

func skillTitle(s string) string { return domainTitle(s) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func pickN(r *rand.Rand, s [][]string) []string { return append([]string(nil), s[r.IntN(len(s))]...) }

func drawWeighted(r *rand.Rand, w []float64) int {
	x := r.Float64()
	for i, p := range w {
		if x < p {
			return i
		}
		x -= p
	}
	return len(w) - 1
}

// zipf draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s.
type zipf struct{ cdf []float64 }

func newZipf(n int, s float64) zipf {
	cdf := make([]float64, n)
	sum := 0.0
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	return zipf{cdf}
}

func (z zipf) draw(r *rand.Rand) int {
	return min(sort.SearchFloat64s(z.cdf, r.Float64()), len(z.cdf)-1)
}

type role struct {
	titles   []string // job titles, most common first
	searches []string // what people type, most common first
	tags     []string
	pay      float64 // relative to 1 = a mid-level software engineer
	manager  bool
}

// roles, most searched first.
var roles = []role{
	{[]string{"Software Engineer", "Software Developer", "Software Development Engineer"}, []string{"software engineer", "software developer", "software"}, []string{"java", "python", "go", "aws", "sql"}, 1, false},
	{[]string{"Backend Engineer", "Back-End Engineer", "Backend Developer", "Back End Engineer"}, []string{"backend engineer", "backend", "back-end developer", "backend developer"}, []string{"go", "java", "python", "postgresql", "aws", "kubernetes", "kafka"}, 1.02, false},
	{[]string{"Data Engineer", "Big Data Engineer"}, []string{"data engineer", "data engineering", "big data"}, []string{"python", "spark", "sql", "airflow", "aws", "snowflake"}, 1, false},
	{[]string{"Full-Stack Engineer", "Full Stack Developer", "Fullstack Engineer"}, []string{"full-stack", "fullstack engineer", "full stack developer"}, []string{"javascript", "typescript", "react", "node.js", "python"}, 0.97, false},
	{[]string{"Frontend Engineer", "Front-End Developer", "Frontend Developer", "UI Engineer"}, []string{"frontend engineer", "front-end", "frontend developer", "ui engineer"}, []string{"javascript", "typescript", "react", "css", "vue"}, 0.95, false},
	{[]string{"Machine Learning Engineer", "ML Engineer", "AI Engineer"}, []string{"machine learning engineer", "ml engineer", "machine learning", "ai engineer"}, []string{"python", "pytorch", "tensorflow", "ml", "llm"}, 1.15, false},
	{[]string{"Data Scientist", "Applied Scientist"}, []string{"data scientist", "applied scientist"}, []string{"python", "sql", "statistics", "ml", "r"}, 1.05, false},
	{[]string{"Product Manager", "Technical Product Manager"}, []string{"product manager", "technical product manager", "product"}, []string{"agile", "b2b", "saas", "analytics"}, 1.05, true},
	{[]string{"DevOps Engineer", "Dev-Ops Engineer"}, []string{"devops", "devops engineer"}, []string{"kubernetes", "terraform", "aws", "ci/cd", "linux"}, 1, false},
	{[]string{"Site Reliability Engineer", "SRE"}, []string{"site reliability engineer", "sre", "site reliability"}, []string{"kubernetes", "linux", "go", "prometheus"}, 1.08, false},
	{[]string{"Data Analyst", "Business Intelligence Analyst"}, []string{"data analyst", "analyst", "business intelligence"}, []string{"sql", "tableau", "excel", "python"}, 0.7, false},
	{[]string{"Engineering Manager", "Software Engineering Manager"}, []string{"engineering manager", "software engineering manager"}, []string{"leadership", "agile", "java", "go"}, 1.3, true},
	{[]string{"iOS Engineer", "Android Engineer", "Mobile Engineer", "iOS Developer"}, []string{"ios", "android", "mobile engineer", "ios developer"}, []string{"swift", "kotlin", "ios", "android"}, 1, false},
	{[]string{"Cloud Engineer", "Cloud Infrastructure Engineer"}, []string{"cloud engineer", "cloud infrastructure", "cloud"}, []string{"aws", "azure", "gcp", "terraform"}, 1, false},
	{[]string{"Platform Engineer", "Infrastructure Engineer"}, []string{"platform engineer", "infrastructure engineer"}, []string{"kubernetes", "go", "aws", "terraform"}, 1.05, false},
	{[]string{"Security Engineer", "Application Security Engineer"}, []string{"security engineer", "application security", "security"}, []string{"appsec", "cloud security", "python", "siem"}, 1.05, false},
	{[]string{"QA Engineer", "Software Engineer in Test", "Test Automation Engineer"}, []string{"qa engineer", "qa", "test automation"}, []string{"selenium", "cypress", "python", "java"}, 0.8, false},
	{[]string{"Product Designer", "UX Designer", "UI/UX Designer"}, []string{"product designer", "ux designer", "ux"}, []string{"figma", "ux research", "design systems"}, 0.9, false},
	{[]string{"Solutions Architect", "Cloud Solutions Architect"}, []string{"solutions architect", "architect"}, []string{"aws", "azure", "pre-sales"}, 1.1, false},
	{[]string{"Java Developer", "Java Software Engineer"}, []string{"java", "java developer"}, []string{"java", "spring", "sql", "microservices"}, 0.95, false},
	{[]string{"Python Developer", "Python Engineer"}, []string{"python", "python developer"}, []string{"python", "django", "flask", "fastapi"}, 0.95, false},
	{[]string{"Technical Program Manager", "Program Manager"}, []string{"technical program manager", "program manager", "tpm"}, []string{"agile", "jira", "infrastructure"}, 1.1, true},
	{[]string{"Embedded Software Engineer", "Firmware Engineer"}, []string{"embedded", "firmware engineer", "embedded software"}, []string{"c", "c++", "rtos", "arm"}, 0.95, false},
	{[]string{"C++ Developer", "C++ Software Engineer"}, []string{"c++", "c++ developer"}, []string{"c++", "linux", "low latency"}, 1.05, false},
	{[]string{".NET Developer", "C# Developer", "C#/.NET Engineer"}, []string{"c#", ".net developer", "net"}, []string{"c#", ".net", "azure", "sql server"}, 0.9, false},
	{[]string{"Golang Developer", "Go Engineer"}, []string{"golang", "go engineer"}, []string{"go", "grpc", "kubernetes"}, 1.05, false},
	{[]string{"Analytics Engineer"}, []string{"analytics engineer"}, []string{"dbt", "sql", "snowflake"}, 0.95, false},
	{[]string{"Network Engineer"}, []string{"network engineer", "network"}, []string{"cisco", "bgp", "juniper"}, 0.85, false},
	{[]string{"Database Administrator", "Database Engineer"}, []string{"database administrator", "dba", "database engineer"}, []string{"postgresql", "oracle", "mysql"}, 0.9, false},
	{[]string{"Research Scientist", "Research Engineer"}, []string{"research scientist", "research engineer"}, []string{"pytorch", "ml", "nlp", "computer vision"}, 1.25, false},
	{[]string{"Sales Engineer", "Solutions Engineer"}, []string{"sales engineer", "solutions engineer"}, []string{"pre-sales", "saas", "demos"}, 0.95, false},
	{[]string{"Support Engineer", "Technical Support Engineer"}, []string{"support engineer", "technical support"}, []string{"linux", "sql", "customer"}, 0.65, false},
	{[]string{"Game Developer", "Gameplay Engineer"}, []string{"game developer", "gameplay engineer", "unity"}, []string{"unity", "unreal", "c++", "c#"}, 0.85, false},
	{[]string{"Computer Vision Engineer"}, []string{"computer vision"}, []string{"opencv", "pytorch", "c++"}, 1.15, false},
	{[]string{"Scrum Master", "Agile Coach"}, []string{"scrum master", "agile coach"}, []string{"agile", "jira", "scrum"}, 0.8, false},
	{[]string{"Technical Writer"}, []string{"technical writer"}, []string{"docs", "api", "markdown"}, 0.7, false},
	{[]string{"Blockchain Engineer", "Smart Contract Engineer"}, []string{"blockchain", "smart contract"}, []string{"solidity", "rust", "web3"}, 1.05, false},
	{[]string{"Salesforce Developer"}, []string{"salesforce"}, []string{"apex", "salesforce", "lwc"}, 0.9, false},
}

type level struct {
	prefix, suffix, seniority string
	pay                       float64
}

var levels = []level{
	{"", "", "mid", 140_000},
	{"Senior ", "", "senior", 175_000},
	{"Staff ", "", "staff", 215_000},
	{"Principal ", "", "principal", 250_000},
	{"Junior ", "", "junior", 95_000},
	{"Lead ", "", "senior", 185_000},
	{"", " II", "mid", 145_000},
	{"", " III", "senior", 170_000},
	{"", " Intern", "intern", 70_000},
	{"Associate ", "", "junior", 100_000},
}

var levelWeights = []float64{0.33, 0.28, 0.08, 0.03, 0.06, 0.04, 0.08, 0.04, 0.02, 0.04}

// domains are teams and business areas that titles name ("Backend
// Engineer, Payments") and specific searches add.
var domains = []string{"payments", "platform", "infrastructure", "growth", "ads", "search", "security", "data platform",
	"identity", "billing", "checkout", "fraud", "risk", "mobile", "web", "api", "developer experience", "observability",
	"storage", "networking", "compute", "ml platform", "recommendations", "personalization", "marketplace", "logistics",
	"supply chain", "healthcare", "fintech", "crypto", "gaming", "streaming", "video", "audio", "maps", "messaging",
	"notifications", "integrations", "partnerships", "enterprise", "smb", "consumer", "trust and safety", "compliance",
	"tax", "ledger", "lending", "insurance", "edtech", "robotics", "autonomy", "simulation", "firmware", "devices",
	"kernel", "compilers", "databases", "distributed systems", "reliability", "internal tools", "analytics", "experimentation",
	"pricing", "catalog", "inventory", "fulfillment", "travel", "real estate", "biotech", "genomics", "climate", "energy"}

// skills people add to a search ("kubernetes", "golang backend").
var skills = []string{"python", "java", "golang", "typescript", "react", "kubernetes", "aws", "rust", "c++", "c#", "node.js",
	"kotlin", "swift", "scala", "spark", "kafka", "terraform", "postgresql", "graphql", "django", "rails", "ruby", "php",
	"elixir", "haskell", "clojure", "snowflake", "airflow", "pytorch", "tensorflow", "llm", "gcp", "azure", "linux",
	"embedded", "fpga", "vue", "angular", "flutter", "unity", "solidity", "dbt", "redis", "elasticsearch", "grpc",
	"spring", "fastapi", "next.js", "svelte", "zig"}

type city struct{ name, state string }

// cities, largest job markets first.
var cities = []city{
	{"San Francisco", "CA"}, {"New York", "NY"}, {"Seattle", "WA"}, {"Austin", "TX"}, {"Boston", "MA"},
	{"Los Angeles", "CA"}, {"San Jose", "CA"}, {"Chicago", "IL"}, {"Denver", "CO"}, {"Washington", "DC"},
	{"Atlanta", "GA"}, {"Dallas", "TX"}, {"Mountain View", "CA"}, {"Sunnyvale", "CA"}, {"Redmond", "WA"},
	{"San Diego", "CA"}, {"Raleigh", "NC"}, {"Houston", "TX"}, {"Portland", "OR"}, {"Minneapolis", "MN"},
	{"Philadelphia", "PA"}, {"Pittsburgh", "PA"}, {"Salt Lake City", "UT"}, {"Phoenix", "AZ"}, {"Miami", "FL"},
	{"Nashville", "TN"}, {"Columbus", "OH"}, {"Detroit", "MI"}, {"Charlotte", "NC"}, {"Palo Alto", "CA"},
	{"Menlo Park", "CA"}, {"Irvine", "CA"}, {"Bellevue", "WA"}, {"Cambridge", "MA"}, {"Arlington", "VA"},
	{"McLean", "VA"}, {"Jersey City", "NJ"}, {"Baltimore", "MD"}, {"St. Louis", "MO"}, {"Kansas City", "MO"},
	{"Indianapolis", "IN"}, {"Madison", "WI"}, {"Boulder", "CO"}, {"Provo", "UT"}, {"Tampa", "FL"},
	{"Orlando", "FL"}, {"Cincinnati", "OH"}, {"Cleveland", "OH"}, {"Sacramento", "CA"}, {"Fresno", "CA"},
	{"Las Vegas", "NV"}, {"Albuquerque", "NM"}, {"Omaha", "NE"}, {"Boise", "ID"}, {"Richmond", "VA"},
	{"Hartford", "CT"}, {"Providence", "RI"}, {"Honolulu", "HI"}, {"Anchorage", "AK"}, {"Birmingham", "AL"},
	{"Louisville", "KY"}, {"Oklahoma City", "OK"}, {"Des Moines", "IA"}, {"Little Rock", "AR"}, {"New Orleans", "LA"},
	{"Burlington", "VT"}, {"Portland", "ME"}, {"Manchester", "NH"}, {"Wilmington", "DE"}, {"Charleston", "SC"},
	{"Jackson", "MS"}, {"Fargo", "ND"}, {"Sioux Falls", "SD"}, {"Billings", "MT"}, {"Cheyenne", "WY"},
	{"Charleston", "WV"}, {"Newark", "NJ"}, {"Durham", "NC"}, {"Ann Arbor", "MI"}, {"Santa Clara", "CA"},
}

const nCompanies = 20_000

var bigCompanies = []string{"Amazon", "Google", "Microsoft", "Meta", "Apple", "Netflix", "Stripe", "Starbucks", "Salesforce",
	"Oracle", "IBM", "Intel", "NVIDIA", "Adobe", "Uber", "Airbnb", "Databricks", "Snowflake", "Datadog", "Shopify",
	"JPMorgan Chase", "Goldman Sachs", "Capital One", "Walmart", "Target", "Costco", "Boeing", "Tesla", "SpaceX", "Block",
	"Coinbase", "Robinhood", "DoorDash", "Instacart", "Lyft", "Pinterest", "Snap", "Reddit", "Dropbox", "Atlassian",
	"Twilio", "Cloudflare", "MongoDB", "Elastic", "HashiCorp", "GitLab", "Okta", "Zillow", "Expedia", "T-Mobile"}

var nameParts = [][]string{
	{"Blue", "Bright", "North", "Silver", "Red", "Green", "Quantum", "Open", "Clear", "Swift", "Iron", "Golden", "Deep", "True", "First", "Next", "Prime", "Nova", "Summit", "Harbor"},
	{"River", "Stone", "Path", "Wave", "Field", "Loop", "Forge", "Grid", "Peak", "Bridge", "Labs", "Works", "Cloud", "Signal", "Vector", "Orbit", "Pixel", "Ledger", "Beacon", "Canopy"},
	{"", "", "", " Inc.", " Labs", " Technologies", " Health", " Systems", " AI", " Financial", " Software", " Group"},
}

func companyNames(n int) []string {
	out := append([]string(nil), bigCompanies...)
	r := rand.New(rand.NewPCG(11, 13))
	seen := map[string]bool{}
	for _, c := range out {
		seen[c] = true
	}
	for len(out) < n {
		name := pick(r, nameParts[0]) + pick(r, nameParts[1]) + pick(r, nameParts[2])
		if seen[name] {
			name = fmt.Sprintf("%s %d", name, len(out))
		}
		seen[name] = true
		out = append(out, name)
	}
	return out
}
