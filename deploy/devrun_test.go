package deploy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// devRun is one `make run` (deploy/dev/run.sh) of TestMakeRun, in its own
// directory, databases, logins and ports.
type devRun struct {
	cmd    *exec.Cmd
	output strings.Builder // what it printed up to its banner's end
}

// TestMakeRun runs deploy/dev/run.sh as `make run` and `make demo-reset`
// do, and runs every command its banner prints, exactly as printed: the
// sample submission, each service's check, the queue state and the export
// (which shows the sample once transfer moved it). The env files are
// complete and hold no passphrase. The demo admin's one-time codes are
// printed once with one set of instructions; after they are used a second
// run prints no codes; --reset starts afresh (new codes, nothing exported).
func TestMakeRun(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatal("psql is needed by deploy/dev/run.sh (Debian's postgresql-client; .ci/run installs Postgres)")
	}
	admin := os.Getenv("AIRLOCK_TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "../intake/cmd/intake", "../transfer/cmd/transfer", "../clinical/cmd/clinical")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	prefix := "airlock_devtest_" + hex.EncodeToString(suffix)
	dev := filepath.Join(tmp, "dev")
	intakePort, clinicalPort := freePort(t), freePort(t)
	env := append(os.Environ(), "AIRLOCK_DEV_DIR="+dev, "AIRLOCK_DEV_BIN="+bin, "AIRLOCK_DEV_DB_PREFIX="+prefix,
		"AIRLOCK_DEV_ROLE_PREFIX="+prefix, "AIRLOCK_DEV_ADMIN_URL="+admin,
		fmt.Sprint("INTAKE_PORT=", intakePort), fmt.Sprint("CLINICAL_PORT=", clinicalPort))
	t.Cleanup(func() {
		for _, sql := range []string{"DROP DATABASE IF EXISTS " + prefix + "_intake WITH (FORCE)", "DROP DATABASE IF EXISTS " + prefix + "_clinical WITH (FORCE)"} {
			exec.Command("psql", "-w", admin, "-qc", sql).Run()
		}
		for _, r := range []string{"owner", "intake", "transfer", "clinical"} {
			exec.Command("psql", "-w", admin, "-qc", "DROP ROLE IF EXISTS "+prefix+"_"+r).Run()
		}
	})
	clinicalURL := fmt.Sprintf("http://127.0.0.1:%d", clinicalPort)

	// First run: a fresh demo.
	r := startDevRun(t, env)
	out := r.output.String()
	codes := regexp.MustCompile(`(?m)^\s+(create|approve) code:\s+(\S+)$`).FindAllStringSubmatch(out, -1)
	if len(codes) != 2 || strings.Count(out, "/enrol") != 1 || strings.Contains(out, "Enrol yourself") {
		t.Errorf("first run: want both codes once and one set of enrolment instructions:\n%s", out)
	}
	for _, svc := range []string{"intake", "transfer", "clinical"} {
		b, err := os.ReadFile(filepath.Join(dev, svc+".env"))
		if err != nil {
			t.Fatalf("%s.env: %v", svc, err)
		}
		if strings.Contains(string(b), "demo passphrase") || strings.Contains(string(b), "TRANSFER_PASSPHRASE=") {
			t.Errorf("%s.env holds the passphrase itself:\n%s", svc, b)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dev, "transfer.env")); !strings.Contains(string(b), "TRANSFER_PASSPHRASE_FILE="+dev+"/passphrase") {
		t.Errorf("transfer.env names no passphrase file:\n%s", b)
	}
	commands := printedCommands(out)
	if len(commands) < 6 {
		t.Fatalf("the banner prints %d commands, want at least 6:\n%s", len(commands), out)
	}
	var exportCmd string
	for _, c := range commands {
		if strings.Contains(c, " export ") {
			exportCmd = c // last: once the sample has moved
			continue
		}
		got := runPrinted(t, c)
		if strings.Contains(c, "curl") && !strings.Contains(got, `"receipt"`) {
			t.Errorf("%s\nprinted %s, want a receipt", c, got)
		}
	}
	var exported string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if exported = runPrinted(t, exportCmd); strings.Contains(exported, "Jane") {
			break
		}
	}
	if !strings.Contains(exported, `"resourceType":"QuestionnaireResponse"`) || !strings.Contains(exported, "Jane") {
		t.Errorf("%s\nprinted %q, want the sample", exportCmd, exported)
	}
	// The demo admin starts setting up the account: the codes are used.
	useEnrolmentCodes(t, clinicalURL, "admin@clinic.example", codes[0][2], codes[1][2])
	r.stop(t)

	// Second run: the used codes are not shown again.
	r = startDevRun(t, env)
	out = r.output.String()
	if strings.Contains(out, codes[0][2]) || strings.Contains(out, codes[1][2]) || !strings.Contains(out, "used or expired") {
		t.Errorf("second run after the codes were used:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dev, "demo-admin.txt")); err == nil {
		t.Errorf("the used codes are still kept in demo-admin.txt")
	}
	r.stop(t)

	// make demo-reset: afresh.
	r = startDevRun(t, env, "--reset")
	out = r.output.String()
	fresh := regexp.MustCompile(`(?m)^\s+create code:\s+(\S+)$`).FindStringSubmatch(out)
	if fresh == nil || fresh[1] == codes[0][2] {
		t.Errorf("after --reset: want new codes:\n%s", out)
	}
	for _, c := range printedCommands(out) {
		if strings.Contains(c, " export ") {
			if got := runPrinted(t, c); strings.TrimSpace(got) != "" {
				t.Errorf("after --reset the export holds %q", got)
			}
		}
	}
	r.stop(t)
}

// startDevRun starts run.sh and waits for its banner to end.
func startDevRun(t *testing.T, env []string, args ...string) *devRun {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"dev/run.sh"}, args...)...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard // the services' JSON logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &devRun{cmd: cmd}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	timeout := time.After(4 * time.Minute)
	seenExport := false
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("run.sh ended before its banner:\n%s", r.output.String())
			}
			r.output.WriteString(line + "\n")
			if seenExport && strings.TrimSpace(line) != "" && strings.HasPrefix(line, "    ") {
				go func() {
					for range lines {
					}
				}()
				return r
			}
			seenExport = seenExport || strings.Contains(line, "Export what reached the clinic")
		case <-timeout:
			t.Fatalf("no banner after 4 minutes:\n%s", r.output.String())
		}
	}
}

// stop sends Ctrl-C to the run and waits for it to stop its services.
func (r *devRun) stop(t *testing.T) {
	t.Helper()
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run.sh did not stop on Ctrl-C")
	}
}

// printedCommands are the banner's indented command lines.
func printedCommands(banner string) []string {
	var out []string
	for _, line := range strings.Split(banner, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "curl ") || strings.HasPrefix(l, "env $(") {
			out = append(out, l)
		}
	}
	return out
}

// runPrinted runs a printed command as a user pastes it into bash, from
// another directory, and returns its stdout; it must exit 0.
func runPrinted(t *testing.T, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("%s\nfailed: %v\n%s", command, err, stderr.String())
	}
	return string(out)
}

// useEnrolmentCodes starts the enrolment at /enrol with the two codes, as
// the demo admin's first visit does.
func useEnrolmentCodes(t *testing.T, base, email, create, approve string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/enrol")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on /enrol:\n%s", page)
	}
	// The cookies are Secure: on http://127.0.0.1 a browser sends them
	// (a secure context); Go's jar does not, so send them by hand.
	req, _ := http.NewRequest(http.MethodPost, base+"/enrol/start", strings.NewReader(url.Values{
		"csrf": {string(m[1])}, "email": {email}, "create_code": {create}, "approve_code": {approve}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range resp.Cookies() {
		req.AddCookie(ck)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusOK {
		t.Fatalf("enrolment start: %d", resp.StatusCode)
	}
}

// freePort is a TCP port nothing listens on just now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
