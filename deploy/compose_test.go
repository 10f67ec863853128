package deploy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/airlockhq/airlock/shared/ops/opstest"
)

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Networks    []string          `yaml:"networks"`
		Ports       []string          `yaml:"ports"`
		Secrets     []string          `yaml:"secrets"`
		ReadOnly    bool              `yaml:"read_only"`
		SecurityOpt []string          `yaml:"security_opt"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Healthcheck *struct {
			// A list ["CMD", ...] (exec) or ["CMD-SHELL", "..."], or a
			// string (run by a shell).
			Test any `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Networks map[string]struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("compose.yaml: no services")
	}
	return c
}

// interpolate applies compose's ${VAR:-default} with every variable unset.
func interpolate(s string) string {
	return regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`).ReplaceAllString(s, "$1")
}

// The networks decide who can reach whom: this is the topology make deploy-test runs.
func TestComposeNetworksIsolateTheDatabases(t *testing.T) {
	c := loadCompose(t)
	want := map[string][]string{
		"intake-db":        {"intake-data"},
		"clinical-db":      {"clinical-data"},
		"migrate-intake":   {"intake-data"},
		"logins-intake":    {"intake-data"},
		"migrate-clinical": {"clinical-data"},
		"logins-clinical":  {"clinical-data"},
		"intake":           {"intake-data", "public"},
		"transfer":         {"clinical-data", "intake-data"},
		"clinical":         {"clinical-data", "staff"},
	}
	for name, s := range c.Services {
		got := slices.Clone(s.Networks)
		sort.Strings(got)
		w, ok := want[name]
		if !ok {
			t.Errorf("service %s is not in this test's map: decide its networks here first", name)
			continue
		}
		if !slices.Equal(got, w) {
			t.Errorf("service %s is on networks %v, want %v", name, got, w)
		}
	}
	for name := range want {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	for _, n := range []string{"intake-data", "clinical-data"} {
		if !c.Networks[n].Internal {
			t.Errorf("network %s must be internal: the databases have no way out", n)
		}
	}
	// Only transfer bridges the two data networks; nothing on public touches clinical data.
	for name, s := range c.Services {
		if slices.Contains(s.Networks, "intake-data") && slices.Contains(s.Networks, "clinical-data") && name != "transfer" {
			t.Errorf("service %s is on both data networks; only transfer may be", name)
		}
		if slices.Contains(s.Networks, "public") && (slices.Contains(s.Networks, "clinical-data") || slices.Contains(s.Networks, "staff")) {
			t.Errorf("service %s joins the public network to the clinical side", name)
		}
	}
}

func TestComposePublishesIntakeAndClinicalOnlyOnTheChosenAddress(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		switch name {
		case "intake":
			if !slices.Equal(s.Ports, []string{"443:8443"}) {
				t.Errorf("intake publishes %v, want [443:8443]", s.Ports)
			}
		case "clinical":
			if len(s.Ports) != 1 || !strings.HasPrefix(s.Ports[0], "${CLINICAL_PUBLISH_ADDR:-127.0.0.1}:") {
				t.Fatalf("clinical publishes %v, want one port on ${CLINICAL_PUBLISH_ADDR:-127.0.0.1}", s.Ports)
			}
			if got := interpolate(s.Ports[0]); got != "127.0.0.1:8444:8444" {
				t.Errorf("clinical publishes %s by default, want 127.0.0.1:8444:8444", got)
			}
		default:
			if len(s.Ports) > 0 {
				t.Errorf("service %s publishes %v: only intake and clinical may", name, s.Ports)
			}
		}
	}
}

func TestComposeAirlockServicesAreLockedDown(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"intake", "transfer", "clinical", "migrate-intake", "migrate-clinical"} {
		s := c.Services[name]
		if !s.ReadOnly || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("service %s: read_only %v, security_opt %v; want read_only and no-new-privileges", name, s.ReadOnly, s.SecurityOpt)
		}
	}
	// Secrets that only transfer may hold.
	for name, s := range c.Services {
		for _, sec := range s.Secrets {
			if (sec == "clinic-key.json" || sec == "transfer-passphrase") && name != "transfer" {
				t.Errorf("service %s is given %s", name, sec)
			}
			if strings.HasPrefix(sec, "clinical-") && strings.HasPrefix(name, "intake") {
				t.Errorf("service %s is given the clinical secret %s", name, sec)
			}
		}
	}
}

// Every secret compose mounts is made by deploy/secrets.sh with safe modes, and stays out of git
// and out of the image build context.
func TestSecretsScriptMakesEveryComposeSecret(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed by deploy/secrets.sh for the self-signed certificates (.ci/run installs it)")
	}
	c := loadCompose(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "../transfer/cmd/transfer", "../clinical/cmd/clinical")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "secrets")
	run := func() {
		cmd := exec.Command("bash", "secrets.sh", dir)
		cmd.Env = append(os.Environ(), "AIRLOCK_BIN="+bin, "AIRLOCK_ENV_FILE="+filepath.Join(tmp, ".env"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("secrets.sh: %v\n%s", err, out)
		}
	}
	run()
	contents := map[string][]byte{}
	for name, sec := range c.Secrets {
		if !strings.HasPrefix(sec.File, "./secrets/") {
			t.Errorf("secret %s comes from %s, outside ./secrets/", name, sec.File)
			continue
		}
		p := filepath.Join(dir, strings.TrimPrefix(sec.File, "./secrets/"))
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("secret %s: secrets.sh did not make it: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
			t.Errorf("secret %s: mode %v, %d bytes; want 0600 and not empty", name, fi.Mode().Perm(), fi.Size())
		}
		contents[name], _ = os.ReadFile(p)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("secrets directory: %v, %v; want mode 0700", fi.Mode().Perm(), err)
	}
	// The URLs carry the passwords the logins get.
	pw := strings.TrimSpace(string(contents["intake-web-password"]))
	if len(pw) != 32 || !strings.Contains(string(contents["intake-writer-url"]), "intake_web:"+pw+"@intake-db:5432/airlock_intake") {
		t.Errorf("intake-writer-url does not carry intake-web-password for intake_web@intake-db")
	}
	if string(contents["intake-web-password"]) == string(contents["transfer-i-password"]) {
		t.Error("two logins got the same password")
	}
	env, err := os.ReadFile(filepath.Join(tmp, ".env"))
	if err != nil || !regexp.MustCompile(`(?m)^INTAKE_RECIPIENTS=\S+$`).Match(env) {
		t.Errorf(".env: %q, %v; want INTAKE_RECIPIENTS=<public key string>", env, err)
	}
	if os.Geteuid() == 0 {
		for name, uid := range map[string]uint32{"intake-db-password": 999, "clinic-key.json": 65532, "intake-writer-url": 65532} {
			if got := ownerOf(t, filepath.Join(dir, name)); got != uid {
				t.Errorf("%s is owned by uid %d, want %d (the container user that reads it)", name, got, uid)
			}
		}
	}
	// A second run keeps every file as it is.
	run()
	for name, sec := range c.Secrets {
		b, _ := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(sec.File, "./secrets/")))
		if !bytes.Equal(b, contents[name]) {
			t.Errorf("secret %s changed on the second run", name)
		}
	}
}

func TestSecretsAreIgnoredByGitAndDocker(t *testing.T) {
	if _, err := exec.LookPath("git"); err == nil {
		for _, p := range []string{"deploy/secrets/clinic-key.json", "deploy/secrets/transfer-passphrase", "deploy/.env"} {
			cmd := exec.Command("git", "check-ignore", "-q", p)
			cmd.Dir = ".."
			if err := cmd.Run(); err != nil {
				t.Errorf("git does not ignore %s", p)
			}
		}
	}
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, want := range []string{"deploy/secrets/", "deploy/.env", ".dev/"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore lacks %s: `COPY . .` would send it to the build", want)
		}
	}
}

func TestDockerfileHasOCILabels(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"title", "source", "version", "revision", "created"} {
		if !strings.Contains(string(b), "org.opencontainers.image."+l+"=") {
			t.Errorf("Dockerfile lacks the label org.opencontainers.image.%s", l)
		}
	}
}

// imageBinaries are the programs deploy/Dockerfile puts in the Airlock image: what its `go build`
// builds, at the path its COPY puts them.
func imageBinaries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	build := regexp.MustCompile(`(?m)^RUN .*go build .*-o /out/ (.+)$`).FindStringSubmatch(string(b))
	copyTo := regexp.MustCompile(`(?m)^COPY --from=build /out/ (/\S+/)$`).FindStringSubmatch(string(b))
	if build == nil || copyTo == nil {
		t.Fatal("Dockerfile: cannot find `go build ... -o /out/ PKGS` and `COPY --from=build /out/ DIR/`")
	}
	bins := map[string]string{} // path in the image -> package
	for _, pkg := range strings.Fields(build[1]) {
		bins[copyTo[1]+filepath.Base(pkg)] = "github.com/airlockhq/airlock/" + strings.TrimPrefix(pkg, "./")
	}
	return bins
}

// The Airlock image is distroless: no shell, no curl. A healthcheck there must be exec form and run
// a binary the image holds, with a subcommand it has. Every long-running Airlock service has one,
// and it really runs: with the service's compose environment it GETs /readyz on the address there
// (exit 0 or 1, never 2: the subcommand exists and its setting is there), and against a listener
// answering 200 it exits 0.
func TestComposeHealthchecksRunTheBinariesThemselves(t *testing.T) {
	c := loadCompose(t)
	bins := imageBinaries(t)
	// Programs the other images hold (the postgres image has a shell, but exec form needs none).
	otherImages := map[string][]string{"${POSTGRES_IMAGE:-postgres:15}": {"pg_isready"}}
	built := map[string]string{}
	for name, s := range c.Services {
		airlock := s.Image == "airlock:local"
		longRunning := airlock && len(s.Command) == 2 && (s.Command[1] == "serve" || s.Command[1] == "run")
		if s.Healthcheck == nil {
			if longRunning {
				t.Errorf("service %s (%v) has no healthcheck", name, s.Command)
			}
			continue
		}
		list, ok := s.Healthcheck.Test.([]any)
		if !ok || len(list) < 2 || list[0] != "CMD" {
			t.Errorf("service %s: healthcheck test %v is not exec form [\"CMD\", program, args...]: a string or CMD-SHELL needs a shell", name, s.Healthcheck.Test)
			continue
		}
		argv := make([]string, 0, len(list)-1)
		for _, a := range list[1:] {
			argv = append(argv, a.(string))
		}
		switch base := filepath.Base(argv[0]); {
		case base == "sh" || base == "bash" || base == "dash" || base == "busybox" || base == "curl" || base == "wget":
			t.Errorf("service %s: healthcheck runs %s, which the distroless image lacks", name, argv[0])
			continue
		case !airlock:
			if !slices.Contains(otherImages[s.Image], argv[0]) {
				t.Errorf("service %s: healthcheck runs %s; the image %s is not known to hold it", name, argv[0], s.Image)
			}
			continue
		}
		pkg, ok := bins[argv[0]]
		if !ok {
			t.Errorf("service %s: healthcheck runs %s, which the Airlock image does not hold (it holds %v)", name, argv[0], slices.Sorted(func(y func(string) bool) {
				for k := range bins {
					if !y(k) {
						return
					}
				}
			}))
			continue
		}
		if !longRunning || filepath.Base(argv[0]) != s.Command[0] || len(argv) != 2 || argv[1] != "healthcheck" {
			t.Errorf("service %s runs %v; want its healthcheck to be [%s healthcheck]", name, s.Command, argv[0])
			continue
		}
		if built[pkg] == "" {
			built[pkg] = opstest.Build(t, pkg)
		}
		env := map[string]string{}
		addrVar := ""
		for k, v := range s.Environment {
			env[k] = interpolate(v)
			if strings.HasSuffix(k, "_METRICS_ADDR") {
				addrVar = k
			}
		}
		if addrVar == "" {
			t.Errorf("service %s sets no *_METRICS_ADDR: its healthcheck has no /readyz to ask", name)
			continue
		}
		res := opstest.Run(t, built[pkg], env, argv[1:]...)
		if res.Code != 0 && res.Code != 1 {
			t.Errorf("service %s: `%s healthcheck` with its compose environment exits %d: %s%s", name, s.Command[0], res.Code, res.Stdout, res.Stderr)
			continue
		}
		var asked []string
		ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			asked = append(asked, r.Method+" "+r.URL.Path)
		}))
		env[addrVar] = strings.TrimPrefix(ready.URL, "http://")
		res = opstest.Run(t, built[pkg], env, argv[1:]...)
		ready.Close()
		if res.Code != 0 || !slices.Equal(asked, []string{"GET /readyz"}) {
			t.Errorf("service %s: healthcheck against a ready listener exits %d (%s%s) after %v; want 0 after GET /readyz", name, res.Code, res.Stdout, res.Stderr, asked)
		}
	}
}
