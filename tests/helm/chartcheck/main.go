// chartcheck reads the output of `helm template` (or scripts/render-chart) for
// the crmsync chart and checks it: every document is a Kubernetes object, the
// ConfigMap's config.json passes `crmsync check-config --with-secrets` with
// only the variables the Deployment injects, and the invariants the chart
// promises hold (probes, non-root, read-only root filesystem, grace period
// above the drain deadline, autoscaling bounded by partitions and keyed on
// the worker's consumer group, alert and dashboard queries using metrics the
// worker exports).
//
// Usage:
//
//	chartcheck --crmsync BIN --partitions N [--expect Kind]... [--absent Kind]...
//	           [--topics N] [--dashboard FILE] RENDERED.yaml
//
// Prints one line per check and "N passed, N failed"; exits 1 on any failure.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

type obj = map[string]interface{}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// The metrics the worker exports (docs/OPERATIONS.md lists them).
var knownMetrics = map[string]bool{
	"crmsync_events_consumed_total":         true,
	"crmsync_events_decoded_total":          true,
	"crmsync_events_skipped_total":          true,
	"crmsync_events_dead_lettered_total":    true,
	"crmsync_operations_total":              true,
	"crmsync_http_requests_total":           true,
	"crmsync_http_request_duration_seconds": true,
	"crmsync_http_requests_in_flight":       true,
	"crmsync_http_throttled_total":          true,
	"crmsync_retries_total":                 true,
	"crmsync_batch_size":                    true,
	"crmsync_delivery_latency_seconds":      true,
	"crmsync_operations_pending":            true,
	"crmsync_circuit_state":                 true,
	"crmsync_rate_limit_tokens":             true,
	"crmsync_rebalances_total":              true,
	"crmsync_committed_offset":              true,
	"crmsync_consumer_lag":                  true,
	"crmsync_build_info":                    true,
}

var histograms = map[string]bool{
	"crmsync_http_request_duration_seconds": true,
	"crmsync_batch_size":                    true,
	"crmsync_delivery_latency_seconds":      true,
}

var passed, failed int

func check(name string, err error) {
	if err != nil {
		failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	passed++
	fmt.Printf("ok   %s\n", name)
}

func get(o interface{}, path ...string) interface{} {
	cur := o
	for _, p := range path {
		m, ok := cur.(obj)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func str(o interface{}, path ...string) string {
	s, _ := get(o, path...).(string)
	return s
}

func num(o interface{}, path ...string) (int, bool) {
	switch v := get(o, path...).(type) {
	case int:
		return v, true
	case float64:
		return int(v), true
	}
	return 0, false
}

func list(o interface{}, path ...string) []interface{} {
	l, _ := get(o, path...).([]interface{})
	return l
}

func main() {
	var expect, absent listFlag
	crmsync := flag.String("crmsync", "", "crmsync binary")
	partitions := flag.Int("partitions", 0, "the values' partitions")
	topics := flag.Int("topics", 0, "expected number of configured topics (0: any)")
	dashboard := flag.String("dashboard", "", "Grafana dashboard JSON to check")
	flag.Var(&expect, "expect", "kind that must be rendered (repeatable)")
	flag.Var(&absent, "absent", "kind that must not be rendered (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 || *crmsync == "" || *partitions < 1 {
		fmt.Fprintln(os.Stderr, "usage: chartcheck --crmsync BIN --partitions N [--expect Kind]... RENDERED.yaml")
		os.Exit(2)
	}
	data, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	docs, err := parseDocs(data)
	check("every document parses as YAML", err)
	byKind := map[string][]obj{}
	var shapeErrs []string
	for i, d := range docs {
		kind, name := str(d, "kind"), str(d, "metadata", "name")
		if str(d, "apiVersion") == "" || kind == "" || name == "" {
			shapeErrs = append(shapeErrs, fmt.Sprintf("document %d lacks apiVersion, kind or metadata.name", i+1))
			continue
		}
		byKind[kind] = append(byKind[kind], d)
	}
	check(fmt.Sprintf("%d documents have apiVersion, kind and metadata.name", len(docs)), joinErrs(shapeErrs))
	for _, k := range expect {
		check("renders a "+k, cond(len(byKind[k]) > 0, "no %s rendered", k))
	}
	for _, k := range absent {
		check("renders no "+k, cond(len(byKind[k]) == 0, "%s rendered although disabled", k))
	}
	for _, k := range []string{"Deployment", "ConfigMap", "Service"} {
		if len(byKind[k]) == 0 {
			fmt.Printf("FAIL no %s: cannot check further\n", k)
			failed++
			finish()
		}
	}

	deploy := byKind["Deployment"][0]
	pod := get(deploy, "spec", "template", "spec")
	containers := list(pod, "containers")
	check("Deployment has one container", cond(len(containers) == 1, "%d containers", len(containers)))
	if len(containers) == 0 {
		finish()
	}
	container := containers[0].(obj)

	// The config the pod reads: --config path -> volume mount -> ConfigMap key.
	config, configErr := podConfig(byKind["ConfigMap"], pod, container)
	check("container's --config file comes from a rendered ConfigMap", configErr)
	if configErr != nil {
		finish()
	}

	// check-config with only the variables the Deployment sets.
	secretEnv := map[string]bool{}
	for _, e := range list(container, "env") {
		if str(e, "valueFrom", "secretKeyRef", "name") != "" && str(e, "valueFrom", "secretKeyRef", "key") != "" {
			secretEnv[str(e, "name")] = true
		}
	}
	var missing []string
	for _, name := range apiKeyEnvs(config) {
		if !secretEnv[name] {
			missing = append(missing, name+" is referenced by config.json but not set from a Secret")
		}
	}
	check("every {\"env\"} API key of config.json comes from a secretKeyRef", joinErrs(missing))
	var kafkaMissing []string
	for _, name := range kafkaPropertyEnvs(config) {
		if !secretEnv[name] {
			kafkaMissing = append(kafkaMissing, name+" is referenced by config.kafka.properties but not set from a Secret")
		}
	}
	check("every {\"env\"} Kafka property of config.json comes from a secretKeyRef", joinErrs(kafkaMissing))
	check("no Kafka credential is a literal in the ConfigMap", kafkaCredentialLiterals(config))
	check("crmsync check-config --with-secrets accepts config.json", checkConfig(*crmsync, config, secretEnv))

	// Probes on the metrics listener.
	port, portErr := listenPort(config)
	check("config.worker.metrics.listen serves all interfaces", portErr)
	containerPorts := map[string]int{}
	for _, p := range list(container, "ports") {
		n, _ := num(p, "containerPort")
		containerPorts[str(p, "name")] = n
	}
	check("container port \"metrics\" is the listener's port",
		cond(containerPorts["metrics"] == port, "containerPort %d, listen port %d", containerPorts["metrics"], port))
	for _, pr := range []struct{ probe, path string }{{"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"}} {
		p := get(container, pr.probe, "httpGet")
		var err error
		if p == nil {
			err = errors.New("no httpGet probe")
		} else if got := str(p, "path"); got != pr.path {
			err = fmt.Errorf("path %q", got)
		} else if !probePortOK(get(p, "port"), containerPorts, port) {
			err = fmt.Errorf("port %v is not the metrics port", get(p, "port"))
		}
		check(fmt.Sprintf("%s is GET %s on the metrics port", pr.probe, pr.path), err)
	}

	// Security context.
	podSC, ctrSC := get(pod, "securityContext"), get(container, "securityContext")
	nonRoot := get(ctrSC, "runAsNonRoot") == true || get(podSC, "runAsNonRoot") == true
	uid, hasUID := num(ctrSC, "runAsUser")
	if !hasUID {
		uid, hasUID = num(podSC, "runAsUser")
	}
	check("runs as non-root", cond(nonRoot && (!hasUID || uid != 0), "runAsNonRoot %v, runAsUser %d", nonRoot, uid))
	check("readOnlyRootFilesystem", cond(get(ctrSC, "readOnlyRootFilesystem") == true, "not set"))
	check("no privilege escalation", cond(get(ctrSC, "allowPrivilegeEscalation") == false, "not disabled"))

	// The RocksDB state backend writes under state.dir, on a volume (the root
	// filesystem is read-only).
	if str(config, "state", "backend") == "rocksdb" {
		check("config.state.dir is on a writable volume", stateVolumeOK(pod, container, str(config, "state", "dir")))
	}

	// Grace period above the drain deadline.
	drainMs := 10000
	if v, ok := num(config, "worker", "drainTimeoutMs"); ok {
		drainMs = v
	}
	grace, hasGrace := num(pod, "terminationGracePeriodSeconds")
	check(fmt.Sprintf("terminationGracePeriodSeconds > drainTimeoutMs (%d ms)", drainMs),
		cond(hasGrace && grace*1000 > drainMs, "terminationGracePeriodSeconds %d (set: %v)", grace, hasGrace))

	// Labels and selectors line up.
	podLabels, _ := get(deploy, "spec", "template", "metadata", "labels").(obj)
	check("Deployment selector matches its pods", selects(get(deploy, "spec", "selector", "matchLabels"), podLabels))
	svc := byKind["Service"][0]
	check("Service selects the pods", selects(get(svc, "spec", "selector"), podLabels))
	svcPortOK := false
	for _, p := range list(svc, "spec", "ports") {
		t := get(p, "targetPort")
		if str(p, "name") == "metrics" && probePortOK(t, containerPorts, port) {
			svcPortOK = true
		}
	}
	check("Service port \"metrics\" targets the listener", cond(svcPortOK, "no such port"))
	for _, pdb := range byKind["PodDisruptionBudget"] {
		check("PodDisruptionBudget selects the pods", selects(get(pdb, "spec", "selector", "matchLabels"), podLabels))
	}

	// Autoscaling.
	topicNames := configTopics(config)
	if *topics > 0 {
		check(fmt.Sprintf("config has %d topics", *topics), cond(len(topicNames) == *topics, "%v", topicNames))
	}
	groupID := str(config, "kafka", "groupId")
	if groupID == "" {
		groupID = "crmsync"
	}
	autoscaled := len(byKind["ScaledObject"])+len(byKind["HorizontalPodAutoscaler"]) > 0
	_, hasReplicas := num(deploy, "spec", "replicas")
	if autoscaled {
		check("autoscaled Deployment leaves replicas to the autoscaler", cond(!hasReplicas, "spec.replicas is set"))
	} else {
		r, _ := num(deploy, "spec", "replicas")
		check("replicas <= partitions", cond(hasReplicas && r <= *partitions, "replicas %d, partitions %d", r, *partitions))
	}
	for _, so := range byKind["ScaledObject"] {
		checkScaledObject(so, str(deploy, "metadata", "name"), groupID, str(config, "kafka", "bootstrapServers"),
			topicNames, *partitions)
	}
	for _, hpa := range byKind["HorizontalPodAutoscaler"] {
		max, _ := num(hpa, "spec", "maxReplicas")
		min, _ := num(hpa, "spec", "minReplicas")
		check("HPA scales down gradually", gradualScaleDown(get(hpa, "spec", "behavior", "scaleDown"), min, max))
		check("HPA maxReplicas <= partitions", cond(max >= 1 && max <= *partitions, "maxReplicas %d, partitions %d", max, *partitions))
		check("HPA targets the Deployment", cond(str(hpa, "spec", "scaleTargetRef", "name") == str(deploy, "metadata", "name"), "targets %q", str(hpa, "spec", "scaleTargetRef", "name")))
	}
	for _, sm := range byKind["ServiceMonitor"] {
		svcLabels, _ := get(svc, "metadata", "labels").(obj)
		check("ServiceMonitor selects the Service", selects(get(sm, "spec", "selector", "matchLabels"), svcLabels))
		eps := list(sm, "spec", "endpoints")
		check("ServiceMonitor scrapes port metrics at /metrics",
			cond(len(eps) > 0 && str(eps[0], "port") == "metrics" && str(eps[0], "path") == "/metrics", "%v", eps))
	}
	for _, pr := range byKind["PrometheusRule"] {
		var exprs []string
		for _, g := range list(pr, "spec", "groups") {
			for _, r := range list(g, "rules") {
				exprs = append(exprs, str(r, "expr"))
			}
		}
		check(fmt.Sprintf("PrometheusRule's %d alerts query exported metrics", len(exprs)), unknownMetrics(exprs))
	}
	for _, cm := range byKind["ConfigMap"] {
		if j, ok := get(cm, "data", "crmsync.json").(string); ok {
			check("dashboard ConfigMap holds the dashboard", dashboardOK([]byte(j)))
		}
	}
	if *dashboard != "" {
		d, err := os.ReadFile(*dashboard)
		if err == nil {
			err = dashboardOK(d)
		}
		check("dashboards/crmsync.json queries exported metrics", err)
	}
	finish()
}

func finish() {
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

func cond(ok bool, format string, args ...interface{}) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func joinErrs(msgs []string) error {
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

func parseDocs(data []byte) ([]obj, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []obj
	for {
		var raw interface{}
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, fmt.Errorf("document %d: %v", len(docs)+1, err)
		}
		if raw == nil {
			continue
		}
		// Through JSON, so numbers and maps have one shape.
		j, err := json.Marshal(raw)
		if err != nil {
			return docs, fmt.Errorf("document %d: %v", len(docs)+1, err)
		}
		var d obj
		if err := json.Unmarshal(j, &d); err != nil {
			return docs, fmt.Errorf("document %d is not a mapping", len(docs)+1)
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil, errors.New("nothing rendered")
	}
	return docs, nil
}

func podConfig(configMaps []obj, pod interface{}, container obj) (obj, error) {
	args := list(container, "args")
	path := ""
	for i, a := range args {
		if (a == "--config" || a == "-c") && i+1 < len(args) {
			path, _ = args[i+1].(string)
		}
	}
	hasRun := false
	for _, a := range args {
		hasRun = hasRun || a == "run"
	}
	if !hasRun || path == "" {
		return nil, fmt.Errorf("args %v are not `run --config FILE`", args)
	}
	for _, m := range list(container, "volumeMounts") {
		dir := str(m, "mountPath")
		if filepath.Dir(path) != filepath.Clean(dir) {
			continue
		}
		for _, v := range list(pod, "volumes") {
			if str(v, "name") != str(m, "name") || str(v, "configMap", "name") == "" {
				continue
			}
			for _, cm := range configMaps {
				if str(cm, "metadata", "name") != str(v, "configMap", "name") {
					continue
				}
				text, ok := get(cm, "data", filepath.Base(path)).(string)
				if !ok {
					return nil, fmt.Errorf("ConfigMap %s has no key %s", str(cm, "metadata", "name"), filepath.Base(path))
				}
				var config obj
				if err := json.Unmarshal([]byte(text), &config); err != nil {
					return nil, fmt.Errorf("config.json is not JSON: %v", err)
				}
				return config, nil
			}
			return nil, fmt.Errorf("ConfigMap %s is not rendered", str(v, "configMap", "name"))
		}
	}
	return nil, fmt.Errorf("no ConfigMap volume is mounted at %s", filepath.Dir(path))
}

// The volume mount that holds dir (the mount point or a parent of it) is
// writable and names one of the pod's volumes.
func stateVolumeOK(pod interface{}, container obj, dir string) error {
	if dir == "" {
		return errors.New("config.state.dir is empty")
	}
	dir = filepath.Clean(dir)
	for _, m := range list(container, "volumeMounts") {
		at := filepath.Clean(str(m, "mountPath"))
		if at != dir && !strings.HasPrefix(dir, at+"/") || at == "/" {
			continue
		}
		if get(m, "readOnly") == true {
			return fmt.Errorf("the volume mounted at %s is read-only", at)
		}
		for _, v := range list(pod, "volumes") {
			if str(v, "name") == str(m, "name") {
				return nil
			}
		}
		return fmt.Errorf("volume %q mounted at %s is not defined", str(m, "name"), at)
	}
	return fmt.Errorf("no volume is mounted at %s", dir)
}

func apiKeyEnvs(config obj) []string {
	var names []string
	providers, _ := get(config, "providers").(obj)
	for _, p := range providers {
		if env := str(p, "apiKey", "env"); env != "" {
			names = append(names, env)
		}
	}
	sort.Strings(names)
	return names
}

// librdkafka properties that carry credentials (the chart's
// crmsync.kafkaCredentialProperties).
var kafkaCredentials = []string{"sasl.password", "ssl.key.password", "ssl.key.pem",
	"ssl.keystore.password", "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config"}

func kafkaPropertyEnvs(config obj) []string {
	var names []string
	properties, _ := get(config, "kafka", "properties").(obj)
	for _, v := range properties {
		if env := str(v, "env"); env != "" {
			names = append(names, env)
		}
	}
	sort.Strings(names)
	return names
}

func kafkaCredentialLiterals(config obj) error {
	properties, _ := get(config, "kafka", "properties").(obj)
	var bad []string
	for _, name := range kafkaCredentials {
		v, ok := properties[name]
		if !ok {
			continue
		}
		if _, isRef := v.(obj); !isRef {
			bad = append(bad, "config.kafka.properties."+name+" is a literal")
		}
	}
	return joinErrs(bad)
}

// check-config with every secret the config references (API keys and
// {"env"} Kafka properties) set to a dummy value.
func checkConfig(bin string, config obj, secretEnv map[string]bool) error {
	env := map[string]bool{}
	for name := range secretEnv {
		env[name] = true
	}
	for _, name := range kafkaPropertyEnvs(config) {
		env[name] = true
	}
	return runCheckConfig(bin, config, env)
}

func runCheckConfig(bin string, config obj, secretEnv map[string]bool) error {
	dir, err := os.MkdirTemp("", "chartcheck")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "config.json")
	data, _ := json.MarshalIndent(config, "", "  ")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return err
	}
	// Only the injected variables, each with a dummy key.
	env := []string{"PATH=" + os.Getenv("PATH")}
	for name := range secretEnv {
		env = append(env, name+"=dummy-key-for-check")
	}
	cmd := exec.Command(bin, "check-config", "--with-secrets", file)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func listenPort(config obj) (int, error) {
	listen := "0.0.0.0:9464"
	if v, ok := get(config, "worker", "metrics", "listen").(string); ok {
		listen = v
	}
	m := regexp.MustCompile(`^(0\.0\.0\.0|\[::\]|):(\d+)$`).FindStringSubmatch(listen)
	if m == nil {
		return 0, fmt.Errorf("listen %q is not reachable through the pod IP", listen)
	}
	port, _ := strconv.Atoi(m[2])
	return port, nil
}

func probePortOK(p interface{}, containerPorts map[string]int, port int) bool {
	switch v := p.(type) {
	case string:
		return containerPorts[v] == port && port != 0
	case float64:
		return int(v) == port
	}
	return false
}

func selects(selector interface{}, labels obj) error {
	sel, ok := selector.(obj)
	if !ok || len(sel) == 0 {
		return errors.New("empty selector")
	}
	for k, v := range sel {
		if labels[k] != v {
			return fmt.Errorf("label %s=%v not on the target (%v)", k, v, labels)
		}
	}
	return nil
}

func configTopics(config obj) []string {
	var names []string
	for _, t := range list(config, "kafka", "topics") {
		if s, ok := t.(string); ok {
			names = append(names, s)
		} else {
			names = append(names, str(t, "name"))
		}
	}
	sort.Strings(names)
	return names
}

func checkScaledObject(so obj, deployment, groupID, bootstrap string, topics []string, partitions int) {
	check("ScaledObject targets the Deployment",
		cond(str(so, "spec", "scaleTargetRef", "name") == deployment, "targets %q", str(so, "spec", "scaleTargetRef", "name")))
	max, _ := num(so, "spec", "maxReplicaCount")
	min, _ := num(so, "spec", "minReplicaCount")
	check("ScaledObject maxReplicaCount <= partitions",
		cond(max >= 1 && max <= partitions, "maxReplicaCount %d, partitions %d", max, partitions))
	check("ScaledObject minReplicaCount <= maxReplicaCount", cond(min <= max, "min %d, max %d", min, max))
	check("ScaledObject scales down gradually (advanced.horizontalPodAutoscalerConfig.behavior)",
		gradualScaleDown(get(so, "spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown"), min, max))
	var triggerTopics, errs []string
	for _, t := range list(so, "spec", "triggers") {
		if str(t, "type") != "kafka" {
			errs = append(errs, "trigger type "+str(t, "type"))
			continue
		}
		md := get(t, "metadata")
		if g := str(md, "consumerGroup"); g != groupID {
			errs = append(errs, fmt.Sprintf("consumerGroup %q, config groupId %q", g, groupID))
		}
		if b := str(md, "bootstrapServers"); b != bootstrap {
			errs = append(errs, fmt.Sprintf("bootstrapServers %q, config %q", b, bootstrap))
		}
		if _, err := strconv.Atoi(str(md, "lagThreshold")); err != nil {
			errs = append(errs, "lagThreshold is not a number string")
		}
		triggerTopics = append(triggerTopics, str(md, "topic"))
	}
	sort.Strings(triggerTopics)
	check("KEDA Kafka triggers use the worker's consumer group and brokers", joinErrs(errs))
	check("one KEDA trigger per configured topic",
		cond(strings.Join(triggerTopics, ",") == strings.Join(topics, ","), "triggers %v, topics %v", triggerTopics, topics))
}

// gradualScaleDown: a scale-down behaviour exists, waits before acting, and
// no policy removes enough pods in one period to go from max to min at once
// (each step is a rebalance of the whole group).
func gradualScaleDown(scaleDown interface{}, min, max int) error {
	if scaleDown == nil {
		return errors.New("no scaleDown behaviour: the autoscaler may drop to the minimum in one step")
	}
	if w, _ := num(scaleDown, "stabilizationWindowSeconds"); w < 60 {
		return fmt.Errorf("stabilizationWindowSeconds %d < 60", w)
	}
	policies := list(scaleDown, "policies")
	if len(policies) == 0 && str(scaleDown, "selectPolicy") != "Disabled" {
		return errors.New("no scaleDown policies")
	}
	for _, p := range policies {
		v, _ := num(p, "value")
		switch str(p, "type") {
		case "Pods":
			if max-min > 1 && v >= max-min {
				return fmt.Errorf("a Pods policy removes %d pods per period (max %d, min %d)", v, max, min)
			}
		case "Percent":
			if v >= 50 {
				return fmt.Errorf("a Percent policy removes %d%% per period", v)
			}
		default:
			return fmt.Errorf("policy type %q", str(p, "type"))
		}
	}
	return nil
}

var metricRef = regexp.MustCompile(`crmsync_[a-z_]+`)

func unknownMetrics(exprs []string) error {
	var bad []string
	for _, e := range exprs {
		if !metricRef.MatchString(e) {
			bad = append(bad, "expression without a crmsync metric: "+e)
		}
		for _, m := range metricRef.FindAllString(e, -1) {
			base := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b := strings.TrimSuffix(m, suffix); b != m && histograms[b] {
					base = b
				}
			}
			if !knownMetrics[base] {
				bad = append(bad, "unknown metric "+m)
			}
		}
	}
	return joinErrs(bad)
}

func dashboardOK(data []byte) error {
	var d obj
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	if str(d, "title") == "" || len(list(d, "panels")) == 0 {
		return errors.New("no title or no panels")
	}
	var exprs []string
	var walk func(v interface{})
	walk = func(v interface{}) {
		switch x := v.(type) {
		case obj:
			if e, ok := x["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			for _, c := range x {
				walk(c)
			}
		case []interface{}:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(list(d, "panels"))
	if len(exprs) == 0 {
		return errors.New("no queries")
	}
	// The variables' queries (label_values(...)) too.
	for _, v := range list(d, "templating", "list") {
		if q := str(v, "definition"); strings.Contains(q, "(") {
			exprs = append(exprs, q)
		}
	}
	return unknownMetrics(exprs)
}
