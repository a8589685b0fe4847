package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/internal/secretbox"
)

// The packaging files (Dockerfile, deploy/, scripts/release.sh,
// .goreleaser.yaml) are checked here, against the binary they ship: the
// flags and environment they pass must exist, the binary the Dockerfile
// builds must be static and serve, the unit must pass systemd-analyze.
// Neither an image build nor `docker compose up` can run on this machine
// (no Docker daemon, no registry).

// repoRoot is the module's root, two levels above this package.
const repoRoot = "../.."

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

// parseDockerfile splits a Dockerfile into instructions (comments dropped,
// backslash continuations joined).
func parseDockerfile(src string) []dockerInstr {
	var out []dockerInstr
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(src, "\n") {
		l := strings.TrimSpace(raw)
		if strings.HasPrefix(l, "#") || (l == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, cont := strings.CutSuffix(l, `\`); cont {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(l)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, dockerInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	return out
}

// execForm reads a JSON-array (exec form) instruction argument.
func execForm(t *testing.T, in dockerInstr) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("Dockerfile line %d: %s must be in exec form (a JSON array): %v", in.line, in.cmd, err)
	}
	return v
}

// dockerStages returns the instructions of each stage, keyed by the order
// of its FROM.
func dockerStages(instrs []dockerInstr) [][]dockerInstr {
	var stages [][]dockerInstr
	for _, in := range instrs {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	return stages
}

func findInstr(stage []dockerInstr, cmd string) []dockerInstr {
	var out []dockerInstr
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// dockerGoBuild is the build stage's `go build` RUN line without its
// BuildKit --mount options.
func dockerGoBuild(t *testing.T, build []dockerInstr) string {
	t.Helper()
	var lines []string
	for _, in := range findInstr(build, "RUN") {
		if strings.Contains(in.args, "go build") {
			lines = append(lines, in.args)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("the build stage has %d RUN lines with go build, want 1", len(lines))
	}
	fields := strings.Fields(lines[0])
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--mount=") {
		fields = fields[1:]
	}
	return strings.Join(fields, " ")
}

// checkServeArgs parses args (starting with "serve") with serve's own flag
// set: an unknown flag or a bad value is an error.
func checkServeArgs(args []string) error {
	if len(args) == 0 || args[0] != "serve" {
		return fmt.Errorf("%q does not start with serve", args)
	}
	fs := newServeCmd().Flags()
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%q: %w", args, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%q: serve takes no arguments, got %q", args, fs.Args())
	}
	return nil
}

// flagValue is the value of --name in args (the last one wins).
func flagValue(args []string, name string) string {
	v := ""
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			v = args[i+1]
		} else if val, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			v = val
		}
	}
	return v
}

// replaceFlag returns args with the value of --name replaced.
func replaceFlag(t *testing.T, args []string, name, value string) []string {
	t.Helper()
	out := slices.Clone(args)
	for i, a := range out {
		if a == "--"+name && i+1 < len(out) {
			out[i+1] = value
			return out
		}
	}
	t.Fatalf("%q has no --%s", args, name)
	return nil
}

// knownEnv is every KINEHOOK_* variable the binary reads in a deployment:
// serve's flags, the admin and encryption keys, the health check's URL.
func knownEnv() map[string]bool {
	m := map[string]bool{serveAdminKeyEnv: true, secretbox.EnvKey: true, healthcheckURLEnv: true}
	newServeCmd().Flags().VisitAll(func(f *pflag.Flag) { m[serveEnvName(f.Name)] = true })
	return m
}

// startBinary runs bin with args (without the caller's KINEHOOK_*
// environment) and waits until base+/healthz answers 200.
func startBinary(t *testing.T, bin, base string, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KINEHOOK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &serveProc{t: t, cmd: cmd, url: base, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %q: %v", args, err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := nethttp.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("%q exited at start: %v\nstdout: %s\nstderr: %s", args, err, p.stdout, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q did not answer /healthz\nstderr: %s", args, p.stderr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// runExit runs bin with args and env and returns its exit code and output.
func runExit(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("run %q: %v", args, err)
	return -1, ""
}

func TestHealthcheckCommand(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		paths = append(paths, r.URL.Path)
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte(`{"status":"ok"}`))
		case "/readyz":
			w.WriteHeader(503)
			w.Write([]byte(`{"error":{"code":"store_unavailable"}}`))
		case "/moved":
			nethttp.Redirect(w, r, "/healthz", nethttp.StatusFound)
		default:
			nethttp.NotFound(w, r)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(nethttp.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name     string
		args     []string
		env      string // KINEHOOK_HEALTHCHECK_URL
		wantErr  string
		wantPath string
	}{
		{name: "healthy", args: []string{"--url", srv.URL + "/healthz"}, wantPath: "/healthz"},
		{name: "bare server URL gets /healthz", args: []string{"--url", srv.URL}, wantPath: "/healthz"},
		{name: "URL from the environment", env: srv.URL + "/healthz", wantPath: "/healthz"},
		{name: "flag beats the environment", args: []string{"--url", srv.URL + "/healthz"}, env: closedURL, wantPath: "/healthz"},
		{name: "not ready", args: []string{"--url", srv.URL + "/readyz"}, wantErr: "503", wantPath: "/readyz"},
		{name: "redirect is not followed", args: []string{"--url", srv.URL + "/moved"}, wantErr: "302", wantPath: "/moved"},
		{name: "not found", args: []string{"--url", srv.URL + "/nope"}, wantErr: "404", wantPath: "/nope"},
		{name: "connection refused", args: []string{"--url", closedURL}, wantErr: "health check"},
		{name: "not a URL", args: []string{"--url", "127.0.0.1:8080"}, wantErr: "not an http"},
		{name: "bad timeout", args: []string{"--url", srv.URL, "--timeout", "0s"}, wantErr: "--timeout"},
		{name: "no arguments", args: []string{"extra"}, wantErr: "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			paths = nil
			t.Setenv(healthcheckURLEnv, tc.env)
			root := &cobra.Command{Use: "kinehook", SilenceUsage: true, SilenceErrors: true}
			root.AddCommand(newHealthcheckCmd())
			out, _, err := cliExec(t, root, append([]string{"healthcheck"}, tc.args...)...)
			if tc.wantErr == "" {
				if err != nil || !strings.HasPrefix(out, "ok: ") {
					t.Fatalf("err %v, out %q; want ok", err, out)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
			if tc.wantPath != "" && !slices.Equal(paths, []string{tc.wantPath}) {
				t.Fatalf("server saw %q, want [%s]", paths, tc.wantPath)
			}
		})
	}
	if defaultHealthcheckURL != "http://127.0.0.1:8080/healthz" {
		t.Fatalf("default URL %s: the Dockerfile's HEALTHCHECK relies on it", defaultHealthcheckURL)
	}
}

// TestDockerfile checks the image's contract: a golang:1.26 builder making
// a static, stamped binary; a scratch final stage with CA certificates, a
// non-root user, /data, port 8080, the health check, the entrypoint and a
// CMD whose flags serve accepts, all agreeing with one another.
func TestDockerfile(t *testing.T) {
	stages := dockerStages(parseDockerfile(readRepoFile(t, "Dockerfile")))
	if len(stages) != 2 {
		t.Fatalf("%d stages, want 2 (builder, final)", len(stages))
	}
	build, final := stages[0], stages[1]
	if from := build[0].args; !regexp.MustCompile(`golang:(\$\{GO_VERSION\}|1\.26) AS build$`).MatchString(from) {
		t.Errorf("builder FROM %q, want golang:1.26 AS build", from)
	}
	if !strings.Contains(readRepoFile(t, "Dockerfile"), "ARG GO_VERSION=1.26\n") {
		t.Error("GO_VERSION does not default to 1.26 (go.mod's)")
	}
	line := dockerGoBuild(t, build)
	for _, want := range []string{"CGO_ENABLED=0", " -trimpath ", "-X github.com/kinehook/kinehook/internal/buildinfo.version=${VERSION}", "-X github.com/kinehook/kinehook/internal/buildinfo.commit=${COMMIT}", "-s -w", "./cmd/kinehook"} {
		if !strings.Contains(line, want) {
			t.Errorf("go build line %q lacks %q", line, want)
		}
	}
	if from := final[0].args; from != "scratch" && !strings.HasPrefix(from, "gcr.io/distroless/static") {
		t.Errorf("final FROM %q, want scratch or distroless/static", from)
	}
	var copies []string
	for _, in := range findInstr(final, "COPY") {
		copies = append(copies, in.args)
	}
	all := strings.Join(copies, "\n")
	for _, want := range []string{"ca-certificates.crt", "/etc/passwd", "/out/kinehook /usr/local/bin/kinehook", "/data"} {
		if !strings.Contains(all, want) {
			t.Errorf("final stage copies nothing with %q:\n%s", want, all)
		}
	}
	users := findInstr(final, "USER")
	if len(users) != 1 || strings.HasPrefix(users[0].args, "0") || users[0].args == "root" {
		t.Fatalf("USER %v: want one non-root user", users)
	}
	uid, _, _ := strings.Cut(users[0].args, ":")
	if !strings.Contains(readRepoFile(t, "Dockerfile"), "kinehook:x:"+uid+":") {
		t.Errorf("USER %s has no /etc/passwd entry written in the builder", uid)
	}
	if !slices.Contains(copies, "--from=build --chown="+users[0].args+" --chmod=0700 /out/data /data") {
		t.Errorf("/data is not copied owned by USER %s, mode 0700:\n%s", users[0].args, all)
	}
	get1 := func(cmd string) dockerInstr {
		ins := findInstr(final, cmd)
		if len(ins) != 1 {
			t.Fatalf("final stage has %d %s, want 1", len(ins), cmd)
		}
		return ins[0]
	}
	if v := get1("VOLUME").args; v != `["/data"]` && v != "/data" {
		t.Errorf("VOLUME %s, want /data", v)
	}
	if v := get1("EXPOSE").args; v != "8080" {
		t.Errorf("EXPOSE %s, want 8080", v)
	}
	if v := execForm(t, get1("ENTRYPOINT")); !slices.Equal(v, []string{"kinehook"}) {
		t.Errorf("ENTRYPOINT %q", v)
	}
	cmdArgs := execForm(t, get1("CMD"))
	if !slices.Equal(cmdArgs, []string{"serve", "--addr", ":8080", "--data", "/data"}) {
		t.Errorf("CMD %q", cmdArgs)
	}
	if err := checkServeArgs(cmdArgs); err != nil {
		t.Errorf("CMD: %v", err)
	}
	hc := get1("HEALTHCHECK").args
	i := strings.Index(hc, "CMD ")
	if i < 0 {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc)
	}
	hcArgs := execForm(t, dockerInstr{cmd: "HEALTHCHECK", args: hc[i+4:], line: get1("HEALTHCHECK").line})
	if len(hcArgs) < 2 || hcArgs[0] != "kinehook" || hcArgs[1] != "healthcheck" {
		t.Fatalf("HEALTHCHECK runs %q, want kinehook healthcheck", hcArgs)
	}
	// The health check's default URL must reach the CMD's port.
	hcURL := defaultHealthcheckURL
	if v := flagValue(hcArgs, "url"); v != "" {
		hcURL = v
	}
	u, _ := url.Parse(hcURL)
	if _, port, _ := strings.Cut(flagValue(cmdArgs, "addr"), ":"); u.Port() != port || u.Path != "/healthz" {
		t.Errorf("HEALTHCHECK checks %s but CMD serves on port %s", hcURL, port)
	}

	ignore := readRepoFile(t, ".dockerignore")
	for _, want := range []string{".git", "dist/", "kinehook-data/", "bin/", "**/.env", "**/encryption.key"} {
		if !slices.Contains(strings.Fields(ignore), want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// The binary the Dockerfile builds, built once per test run (the packaging
// tests all run it; its build flags share no cache with a plain go build).
var dockerBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Stamps of dockerBinary.
const (
	dockerTestVersion = "v1.2.3-docker"
	dockerTestCommit  = "0123456789ab"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if dockerBin.dir != "" {
		os.RemoveAll(dockerBin.dir)
	}
	os.Exit(code)
}

// dockerBinary runs the Dockerfile's own `go build` line (once) for this
// machine's platform, stamped dockerTestVersion and dockerTestCommit,
// writing to a temporary file instead of /out/kinehook.
func dockerBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	line := dockerGoBuild(t, dockerStages(parseDockerfile(readRepoFile(t, "Dockerfile")))[0])
	if !strings.Contains(line, "-o /out/kinehook ") {
		t.Fatalf("go build line %q does not write /out/kinehook", line)
	}
	dockerBin.once.Do(func() {
		dockerBin.dir, dockerBin.err = os.MkdirTemp("", "kinehook-docker-")
		if dockerBin.err != nil {
			return
		}
		bin := filepath.Join(dockerBin.dir, "kinehook")
		line = strings.Replace(line, "-o /out/kinehook ", "-o "+bin+" ", 1)
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "VERSION="+dockerTestVersion, "COMMIT="+dockerTestCommit, "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			dockerBin.err = fmt.Errorf("%s: %w\n%s", line, err, out)
			return
		}
		dockerBin.path = bin
	})
	if dockerBin.err != nil {
		t.Fatal(dockerBin.err)
	}
	return dockerBin.path
}

// checkStatic fails unless bin is an ELF file with no interpreter and no
// dynamic section: it runs on scratch.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("open %s as ELF: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not static", bin, p.Type)
		}
	}
	for _, s := range []string{".interp", ".dynamic", ".dynsym"} {
		if f.Section(s) != nil {
			t.Errorf("%s has a %s section: not static", bin, s)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs %v", bin, libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s keeps its symbol table: -s is missing", bin)
	}
}

// TestDockerfileBinary builds what the Dockerfile builds, with its flags,
// checks it is static and stamped, and runs the image's CMD (port and /data
// moved to a free loopback port and a temporary directory) and HEALTHCHECK.
func TestDockerfileBinary(t *testing.T) {
	bin := dockerBinary(t)
	if runtime.GOOS == "linux" {
		checkStatic(t, bin)
	} else {
		t.Logf("static check skipped: %s binaries are not ELF", runtime.GOOS)
	}
	checkStamp(t, bin, dockerTestVersion, dockerTestCommit)

	stages := dockerStages(parseDockerfile(readRepoFile(t, "Dockerfile")))
	cmdArgs := execForm(t, findInstr(stages[1], "CMD")[0])
	data := filepath.Join(t.TempDir(), "data") // like the image's /data: exists, empty, 0700
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := replaceFlag(t, replaceFlag(t, cmdArgs, "addr", addr), "data", data)
	p := startBinary(t, bin, "http://"+addr, nil, args...)

	// Without KINEHOOK_ADMIN_KEY the first start prints a generated key
	// once (docker logs shows it); it opens the API.
	m := regexp.MustCompile(`generated admin key \(shown only this once, keep it\): (\S+)`).FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no generated admin key on stdout: %q", p.stdout)
	}
	var prj struct{ ID string }
	p.mustCall("POST", "/v1/projects", m[1], map[string]any{"name": "container"}, 201, &prj)
	for _, name := range []string{"kinehook.db", secretbox.KeyFileName} {
		fi, err := os.Stat(filepath.Join(data, name))
		if err != nil {
			t.Fatalf("the data directory has no %s: %v", name, err)
		}
		if name == secretbox.KeyFileName && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	hcArgs := []string{"healthcheck"}
	if code, out := runExit(t, bin, []string{healthcheckURLEnv + "=http://" + addr + "/healthz"}, hcArgs...); code != 0 {
		t.Fatalf("HEALTHCHECK against the running server: exit %d: %s", code, out)
	}
	if code, out := runExit(t, bin, nil, "healthcheck", "--url", "http://"+addr+"/readyz"); code != 0 {
		t.Fatalf("healthcheck of /readyz: exit %d: %s", code, out)
	}
	if err := p.stop(os.Interrupt); err != nil {
		t.Fatalf("serve did not exit 0 on SIGINT: %v\nstderr: %s", err, p.stderr)
	}
	if code, out := runExit(t, bin, []string{healthcheckURLEnv + "=http://" + addr + "/healthz"}, hcArgs...); code != 1 {
		t.Fatalf("HEALTHCHECK with the server stopped: exit %d, want 1: %s", code, out)
	}
}

// composeFile is deploy/compose.yaml parsed.
func composeFile(t *testing.T) map[string]any {
	t.Helper()
	doc, err := parseMiniYAML(readRepoFile(t, "deploy/compose.yaml"))
	if err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	return doc
}

// ymap and ystrings read the parsed document, failing on another shape.
func ymap(t *testing.T, v any, where string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is %T, want a mapping", where, v)
	}
	return m
}

func ystrings(t *testing.T, v any, where string) []string {
	t.Helper()
	seq, ok := v.([]any)
	if !ok {
		t.Fatalf("%s is %T, want a sequence", where, v)
	}
	out := make([]string, len(seq))
	for i, x := range seq {
		s, ok := x.(string)
		if !ok {
			t.Fatalf("%s[%d] is %T, want a string", where, i, x)
		}
		out[i] = s
	}
	return out
}

// interpolate applies compose's ${VAR}, ${VAR:-default} and ${VAR:?error}
// with vars; a missing :? variable fails the test.
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return regexp.MustCompile(`\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}`).ReplaceAllStringFunc(s, func(m string) string {
		sub := regexp.MustCompile(`\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}`).FindStringSubmatch(m)
		v, ok := vars[sub[1]]
		switch {
		case ok && v != "":
			return v
		case sub[2] == ":-":
			return sub[3]
		case sub[2] == ":?":
			t.Fatalf("compose would refuse: %s", sub[3])
		}
		return v
	})
}

var composeInstances = []string{"kinehook-1", "kinehook-2"}

// TestComposeFile checks deploy/compose.yaml's structure: PostgreSQL and
// two kinehook instances on it with the same admin and encryption keys,
// commands and environment serve accepts, a health check per service, the
// volumes declared, distinct host ports.
func TestComposeFile(t *testing.T) {
	doc := composeFile(t)
	services := ymap(t, doc["services"], "services")
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := append([]string{}, append(composeInstances, "postgres")...); !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	declared := ymap(t, doc["volumes"], "volumes")
	usedVolumes := map[string]bool{}
	for _, name := range names {
		svc := ymap(t, services[name], name)
		hc := ymap(t, svc["healthcheck"], name+".healthcheck")
		test := ystrings(t, hc["test"], name+".healthcheck.test")
		if len(test) < 2 || (test[0] != "CMD" && test[0] != "CMD-SHELL") {
			t.Errorf("%s.healthcheck.test %q", name, test)
		}
		if name == "postgres" && !strings.HasPrefix(test[1], "pg_isready") {
			t.Errorf("postgres is checked with %q, want pg_isready", test)
		}
		if slices.Contains(composeInstances, name) && !slices.Equal(test, []string{"CMD", "kinehook", "healthcheck"}) {
			t.Errorf("%s.healthcheck.test %q, want the image's kinehook healthcheck", name, test)
		}
		if svc["restart"] != "unless-stopped" && svc["restart"] != "always" {
			t.Errorf("%s.restart %v", name, svc["restart"])
		}
		for _, v := range ystrings(t, svc["volumes"], name+".volumes") {
			vol, target, ok := strings.Cut(v, ":")
			if !ok || !strings.HasPrefix(target, "/") {
				t.Errorf("%s: volume %q", name, v)
			}
			if _, ok := declared[vol]; !ok {
				t.Errorf("%s uses volume %q, not declared under volumes", name, vol)
			}
			usedVolumes[vol] = true
		}
	}
	for v := range declared {
		if !usedVolumes[v] {
			t.Errorf("volume %s is declared but unused", v)
		}
	}
	pg := ymap(t, services["postgres"], "postgres")
	pgEnv := ymap(t, pg["environment"], "postgres.environment")
	known := knownEnv()
	var shared map[string]any
	hostPorts := map[string]string{}
	for _, name := range composeInstances {
		svc := ymap(t, services[name], name)
		build := ymap(t, svc["build"], name+".build")
		if ctx, _ := build["context"].(string); ctx == "" {
			t.Errorf("%s.build.context missing", name)
		} else if _, err := os.Stat(filepath.Join(repoRoot, "deploy", ctx, "Dockerfile")); err != nil {
			t.Errorf("%s.build.context %q has no Dockerfile: %v", name, ctx, err)
		}
		args := ystrings(t, svc["command"], name+".command")
		if err := checkServeArgs(args); err != nil {
			t.Errorf("%s.command: %v", name, err)
		}
		env := ymap(t, svc["environment"], name+".environment")
		for k := range env {
			if !known[k] {
				t.Errorf("%s sets %s, which kinehook does not read", name, k)
			}
		}
		for _, k := range []string{"KINEHOOK_DATABASE", serveAdminKeyEnv, secretbox.EnvKey} {
			if s, _ := env[k].(string); s == "" {
				t.Errorf("%s does not set %s", name, k)
			}
		}
		if shared == nil {
			shared = env
		} else {
			for _, k := range []string{"KINEHOOK_DATABASE", serveAdminKeyEnv, secretbox.EnvKey} {
				if env[k] != shared[k] {
					t.Errorf("%s: %s differs between the instances", name, k)
				}
			}
		}
		dbURL, err := url.Parse(interpolate(t, env["KINEHOOK_DATABASE"].(string), map[string]string{"POSTGRES_PASSWORD": "pw"}))
		if err != nil {
			t.Fatalf("%s: KINEHOOK_DATABASE: %v", name, err)
		}
		pw, _ := dbURL.User.Password()
		if dbURL.Scheme != "postgres" || dbURL.Hostname() != "postgres" || dbURL.Port() != "5432" ||
			dbURL.User.Username() != pgEnv["POSTGRES_USER"] || "/"+pgEnv["POSTGRES_DB"].(string) != dbURL.Path || pw != "pw" {
			t.Errorf("%s: KINEHOOK_DATABASE %s does not match the postgres service (%v)", name, dbURL.Redacted(), pgEnv)
		}
		if !strings.Contains(pgEnv["POSTGRES_PASSWORD"].(string), "${POSTGRES_PASSWORD") {
			t.Error("postgres's password is not ${POSTGRES_PASSWORD}")
		}
		_, port, _ := strings.Cut(flagValue(args, "addr"), ":")
		ports := ystrings(t, svc["ports"], name+".ports")
		if len(ports) != 1 || !strings.HasSuffix(ports[0], ":"+port) {
			t.Errorf("%s publishes %q; the command listens on port %s", name, ports, port)
		} else {
			hp := strings.TrimSuffix(ports[0], ":"+port)
			if other, dup := hostPorts[hp]; dup {
				t.Errorf("%s and %s both publish %s", other, name, hp)
			}
			hostPorts[hp] = name
		}
		if hcURL, _ := env[healthcheckURLEnv].(string); hcURL != "" {
			u, err := url.Parse(hcURL)
			if err != nil || u.Port() != port {
				t.Errorf("%s: %s=%s does not reach port %s", name, healthcheckURLEnv, hcURL, port)
			}
		}
		dep := ymap(t, ymap(t, svc["depends_on"], name+".depends_on")["postgres"], name+".depends_on.postgres")
		if dep["condition"] != "service_healthy" {
			t.Errorf("%s waits for postgres with condition %v, want service_healthy", name, dep["condition"])
		}
		if g, _ := svc["stop_grace_period"].(string); g == "" {
			t.Errorf("%s has no stop_grace_period: docker's 10s is shorter than --shutdown-timeout", name)
		} else if d, err := time.ParseDuration(g); err != nil || d <= 30*time.Second {
			t.Errorf("%s.stop_grace_period %s, want more than serve's 30s --shutdown-timeout", name, g)
		}
	}
	// Every ${VAR} the file needs is in deploy/.env.example.
	example := readRepoFile(t, "deploy/.env.example")
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)`).FindAllStringSubmatch(readRepoFile(t, "deploy/compose.yaml"), -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).MatchString(example) {
			t.Errorf("deploy/.env.example does not list %s", m[1])
		}
	}
	if dc, err := exec.LookPath("docker"); err == nil {
		if out, err := exec.Command(dc, "compose", "version").CombinedOutput(); err == nil {
			cmd := exec.Command(dc, "compose", "-f", filepath.Join(repoRoot, "deploy/compose.yaml"), "config", "--quiet")
			cmd.Env = append(os.Environ(), "POSTGRES_PASSWORD=pw", "KINEHOOK_ADMIN_KEY=0123456789abcdef0123", "KINEHOOK_ENCRYPTION_KEY=k")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("docker compose config: %v\n%s", err, out)
			}
		} else {
			t.Logf("docker compose config not run: the docker CLI has no compose plugin (%s)", strings.TrimSpace(string(out)))
		}
	} else {
		t.Log("docker compose config not run: no docker CLI")
	}
}

// TestComposeInstancesOnPostgres runs the compose file's two kinehook
// services as processes: their command and environment (interpolated as
// compose would, the database URL pointed at a fresh test database), on one
// PostgreSQL. A project made through one instance works through the other
// with the shared admin key, an endpoint's secret sealed by one is opened by
// the other with the shared encryption key, and each instance's health
// check (its KINEHOOK_HEALTHCHECK_URL, /readyz) passes.
func TestComposeInstancesOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two servers on PostgreSQL")
	}
	dsn := pgtest.New(t)
	bin := dockerBinary(t)
	encKey, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"POSTGRES_PASSWORD": "unused", "KINEHOOK_ADMIN_KEY": "compose-admin-key-0123456789", "KINEHOOK_ENCRYPTION_KEY": encKey}
	services := ymap(t, composeFile(t)["services"], "services")
	var procs []*serveProc
	for _, name := range composeInstances {
		svc := ymap(t, services[name], name)
		addr := freeAddr(t)
		args := replaceFlag(t, ystrings(t, svc["command"], name), "addr", addr)
		var env []string
		for k, v := range ymap(t, svc["environment"], name) {
			val := interpolate(t, v.(string), vars)
			switch k {
			case "KINEHOOK_DATABASE":
				val = dsn
			case healthcheckURLEnv:
				u, _ := url.Parse(val)
				u.Host = addr
				val = u.String()
			}
			env = append(env, k+"="+val)
		}
		env = append(env, "KINEHOOK_DATA="+t.TempDir())
		p := startBinary(t, bin, "http://"+addr, env, args...)
		procs = append(procs, p)
		// /readyz answers 503 until the coordinator holds its leases:
		// retry as Docker does within the service's start_period.
		period, err := time.ParseDuration(ymap(t, svc["healthcheck"], name)["start_period"].(string))
		if err != nil {
			t.Fatalf("%s.healthcheck.start_period: %v", name, err)
		}
		for deadline := time.Now().Add(period); ; {
			code, out := runExit(t, bin, env, "healthcheck")
			if code == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: healthcheck with the service's environment still fails after its start_period %v: exit %d: %s\nstderr: %s", name, period, code, out, p.stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	admin := vars["KINEHOOK_ADMIN_KEY"]
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	procs[0].mustCall("POST", "/v1/projects", admin, map[string]any{"name": "compose"}, 201, &prj)
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	procs[0].mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, map[string]any{"url": "https://hooks.example.com/kinehook"}, 201, &ep)
	var got struct {
		Secret string `json:"secret"`
	}
	procs[1].mustCall("GET", "/v1/projects/"+prj.ID+"/endpoints/"+ep.ID+"/secret", admin, nil, 200, &got)
	if got.Secret == "" || got.Secret != ep.Secret {
		t.Fatalf("the second instance reads secret %q, the first made %q", got.Secret, ep.Secret)
	}
	for _, p := range procs {
		if err := p.stop(os.Interrupt); err != nil {
			t.Errorf("instance did not stop cleanly: %v\nstderr: %s", err, p.stderr)
		}
	}
}

// unitFile is a systemd unit's directives: section -> key -> values.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, src string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %d: %q", n, l)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// TestSystemdUnit checks deploy/kinehook.service: the sandboxing the
// deployment guide promises, an ExecStart whose flags serve accepts, and,
// where systemd-analyze exists, `verify` (no warning at all) and the
// offline `security` exposure (at most 2.0 of 10).
func TestSystemdUnit(t *testing.T) {
	src := readRepoFile(t, "deploy/kinehook.service")
	u := parseUnit(t, src)
	svc := u["Service"]
	if svc == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("sections %v, want Unit, Service, Install", u)
	}
	want := map[string]string{
		"DynamicUser": "yes", "StateDirectory": "kinehook", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "NoNewPrivileges": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes", "LockPersonality": "yes",
		"RestrictNamespaces": "yes", "Restart": "on-failure", "EnvironmentFile": "/etc/kinehook/kinehook.env",
	}
	for k, v := range want {
		if got := svc[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %q lacks @system-service", svc["SystemCallFilter"])
	}
	execStart := strings.Fields(svc["ExecStart"][0])
	if execStart[0] != "/usr/local/bin/kinehook" {
		t.Errorf("ExecStart runs %s", execStart[0])
	}
	if err := checkServeArgs(execStart[1:]); err != nil {
		t.Errorf("ExecStart: %v", err)
	}
	if d := flagValue(execStart, "data"); d != "/var/lib/"+svc["StateDirectory"][0] {
		t.Errorf("--data %s is not the StateDirectory /var/lib/%s", d, svc["StateDirectory"][0])
	}
	if stop, err := time.ParseDuration(svc["TimeoutStopSec"][0]); err != nil || stop <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%s: want more than serve's 30s --shutdown-timeout", svc["TimeoutStopSec"])
	}
	known := knownEnv()
	for _, m := range regexp.MustCompile(`(?m)^#?(KINEHOOK_[A-Z_]+)=`).FindAllStringSubmatch(readRepoFile(t, "deploy/kinehook.env.example"), -1) {
		if !known[m[1]] {
			t.Errorf("deploy/kinehook.env.example sets %s, which kinehook does not read", m[1])
		}
	}

	t.Run("ExecStart serves", func(t *testing.T) {
		// The unit's command as written, but on a free loopback port and a
		// temporary state directory, with the example environment file's
		// admin key filled in.
		bin := dockerBinary(t)
		addr := freeAddr(t)
		args := replaceFlag(t, replaceFlag(t, execStart[1:], "addr", addr), "data", t.TempDir())
		key := "unit-admin-key-0123456789abcdef"
		p := startBinary(t, bin, "http://"+addr, []string{serveAdminKeyEnv + "=" + key}, args...)
		p.mustCall("POST", "/v1/projects", key, map[string]any{"name": "unit"}, 201, nil)
		if err := p.stop(os.Interrupt); err != nil {
			t.Fatalf("serve did not exit 0: %v\nstderr: %s", err, p.stderr)
		}
	})

	t.Run("systemd-analyze", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			// Logged, and only this sub-check: the unit's content is checked above.
			t.Skipf("SKIPPING systemd-analyze verify: not installed (apt-get install systemd); CI=%q", os.Getenv("CI"))
		}
		if testing.Short() {
			t.Skip("builds the binary")
		}
		// verify needs ExecStart's binary: point it at a build.
		bin := dockerBinary(t)
		dir := t.TempDir()
		unit := filepath.Join(dir, "kinehook.service")
		if err := os.WriteFile(unit, []byte(strings.Replace(src, "ExecStart=/usr/local/bin/kinehook ", "ExecStart="+bin+" ", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, sa, "verify", unit).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
		out, err = exec.CommandContext(ctx, sa, "security", "--offline=true", "--threshold=20", unit).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for kinehook.service: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security --offline: %v\n%s", err, out)
		}
		t.Logf("systemd-analyze security --offline: exposure %s", m[1])
		if err != nil {
			t.Fatalf("exposure %s is above 2.0: %v", m[1], err)
		}
	})
}

// releaseTargets is scripts/release.sh's default TARGETS.
func releaseTargets(t *testing.T) []string {
	t.Helper()
	m := regexp.MustCompile(`TARGETS=\$\{TARGETS:-"([^"]+)"\}`).FindStringSubmatch(readRepoFile(t, "scripts/release.sh"))
	if m == nil {
		t.Fatal("scripts/release.sh has no default TARGETS")
	}
	return strings.Fields(m[1])
}

// TestReleaseConfig checks that scripts/release.sh and .goreleaser.yaml
// build the same platforms with the Dockerfile's stamping, and that dist/
// is ignored by git and the image build.
func TestReleaseConfig(t *testing.T) {
	targets := releaseTargets(t)
	var want []string
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, arch := range []string{"amd64", "arm64"} {
			want = append(want, goos+"/"+arch)
		}
	}
	if !slices.Equal(targets, want) {
		t.Errorf("release targets %v, want %v", targets, want)
	}
	// .goreleaser.yaml has sequences of mappings (builds:, archives:),
	// outside parseMiniYAML's subset: its lines are checked instead.
	g := readRepoFile(t, ".goreleaser.yaml")
	for _, line := range []string{"version: 2", "main: ./cmd/kinehook", "- CGO_ENABLED=0", "- -trimpath",
		"goos: [linux, darwin, windows]", "goarch: [amd64, arm64]", "formats: [binary]", "name_template: SHA256SUMS", "algorithm: sha256",
		`name_template: "{{ .ProjectName }}_{{ .Version }}_{{ .Os }}_{{ .Arch }}"`} {
		if !strings.Contains(g, " "+line+"\n") && !strings.Contains(g, "\n"+line+"\n") {
			t.Errorf(".goreleaser.yaml lacks %q", line)
		}
	}
	xs := func(s string) []string {
		return regexp.MustCompile(`-X [^ "]+=`).FindAllString(s, -1)
	}
	docker := xs(dockerGoBuild(t, dockerStages(parseDockerfile(readRepoFile(t, "Dockerfile")))[0]))
	for name, src := range map[string]string{"scripts/release.sh": readRepoFile(t, "scripts/release.sh"), ".goreleaser.yaml": g, "Makefile": readRepoFile(t, "Makefile")} {
		if got := xs(src); !slices.Equal(got, docker) {
			t.Errorf("%s stamps %q, the Dockerfile %q", name, got, docker)
		}
	}
	if !slices.Contains(strings.Fields(readRepoFile(t, ".gitignore")), "/dist/") {
		t.Error(".gitignore does not ignore /dist/")
	}
	if !regexp.MustCompile(`(?m)^release:\n\t.*scripts/release\.sh`).MatchString(readRepoFile(t, "Makefile")) {
		t.Error("make release does not run scripts/release.sh")
	}
}

// TestReleaseScript runs scripts/release.sh for this machine's platform
// into a temporary dist: the binary is named by version and platform,
// stamped, static, and listed in SHA256SUMS with its hash.
func TestReleaseScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dist := filepath.Join(t.TempDir(), "dist")
	target := runtime.GOOS + "/" + runtime.GOARCH
	run := func(version string) (string, error) {
		cmd := exec.Command("bash", "scripts/release.sh")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "VERSION="+version, "COMMIT=feedc0ffee00", "TARGETS="+target, "DIST="+dist)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("v9.9.9-rc.1+test"); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	name := "kinehook_v9.9.9-rc.1+test_" + runtime.GOOS + "_" + runtime.GOARCH
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	entries, _ := os.ReadDir(dist)
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	if !slices.Equal(files, []string{"SHA256SUMS", name}) {
		t.Fatalf("dist holds %v, want [SHA256SUMS %s]", files, name)
	}
	bin := filepath.Join(dist, name)
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	sums := readFileT(t, filepath.Join(dist, "SHA256SUMS"))
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; sums != want {
		t.Fatalf("SHA256SUMS %q, want %q", sums, want)
	}
	if runtime.GOOS == "linux" {
		checkStatic(t, bin)
	}
	checkStamp(t, bin, "v9.9.9-rc.1+test", "feedc0ffee00")
	if out, err := run("v1 2; rm -rf /"); err == nil || !strings.Contains(out, "must be letters, digits") {
		t.Fatalf("a VERSION with spaces was accepted: %v\n%s", err, out)
	}
}

func readFileT(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkStamp runs `bin version --json` and checks the version and commit
// the build stamped (-X .../internal/buildinfo.version and .commit).
func checkStamp(t *testing.T, bin, version, commit string) {
	t.Helper()
	code, out := runExit(t, bin, nil, "version", "--json")
	var v struct{ Version, Commit string }
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Version != version || v.Commit != commit {
		t.Fatalf("version --json: exit %d, %q (%v); want version %s, commit %s", code, out, err, version, commit)
	}
}
