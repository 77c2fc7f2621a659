package helm_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

var (
	// strict refuses unknown and duplicate fields.
	strict = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	// typeConverter checks objects against the OpenAPI schema client-go
	// embeds (structured-merge-diff).
	typeConverter = applyconfigurations.NewTypeConverter(scheme.Scheme)
)

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the chart sets; any other field fails the decoding.
type serviceMonitor struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// objects is a decoded render.
type objects struct {
	all             []metav1.Object
	deployments     []*appsv1.Deployment
	jobs            []*batchv1.Job
	services        []*corev1.Service
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	pvcs            []*corev1.PersistentVolumeClaim
	serviceAccounts []*corev1.ServiceAccount
	ingresses       []*networkingv1.Ingress
	netpols         []*networkingv1.NetworkPolicy
	serviceMonitors []*serviceMonitor
}

// decodeAll decodes every document strictly and checks it against the
// OpenAPI schema.
func decodeAll(t *testing.T, all string) *objects {
	t.Helper()
	objs := &objects{}
	for _, doc := range splitDocs(all) {
		src := "?"
		if m := sourceRE.FindStringSubmatch(doc); m != nil {
			src = m[1]
		}
		if err := decode(objs, []byte(doc)); err != nil {
			t.Errorf("%s: %v\n%s", src, err, doc)
		}
	}
	if len(objs.all) == 0 {
		t.Fatal("the render holds no object")
	}
	return objs
}

func decode(objs *objects, doc []byte) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	var u map[string]any
	if err := json.Unmarshal(j, &u); err != nil {
		return err
	}
	if u["apiVersion"] == "monitoring.coreos.com/v1" && u["kind"] == "ServiceMonitor" {
		var sm serviceMonitor
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sm); err != nil {
			return fmt.Errorf("ServiceMonitor: %w", err)
		}
		objs.serviceMonitors = append(objs.serviceMonitors, &sm)
		objs.all = append(objs.all, &sm.Metadata)
		return nil
	}
	obj, gvk, err := strict.Decode(doc, nil, nil)
	if err != nil {
		return fmt.Errorf("strict decoding: %w", err)
	}
	if _, err := typeConverter.ObjectToTyped(&unstructured.Unstructured{Object: u}); err != nil {
		return fmt.Errorf("%s against the OpenAPI schema: %w", gvk.Kind, err)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		objs.deployments = append(objs.deployments, o)
	case *batchv1.Job:
		objs.jobs = append(objs.jobs, o)
	case *corev1.Service:
		objs.services = append(objs.services, o)
	case *policyv1.PodDisruptionBudget:
		objs.pdbs = append(objs.pdbs, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		objs.hpas = append(objs.hpas, o)
	case *corev1.ConfigMap:
		objs.configMaps = append(objs.configMaps, o)
	case *corev1.Secret:
		objs.secrets = append(objs.secrets, o)
	case *corev1.PersistentVolumeClaim:
		objs.pvcs = append(objs.pvcs, o)
	case *corev1.ServiceAccount:
		objs.serviceAccounts = append(objs.serviceAccounts, o)
	case *networkingv1.Ingress:
		objs.ingresses = append(objs.ingresses, o)
	case *networkingv1.NetworkPolicy:
		objs.netpols = append(objs.netpols, o)
	default:
		return fmt.Errorf("the chart is not expected to render a %s", gvk)
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return fmt.Errorf("%s has no metadata", gvk)
	}
	objs.all = append(objs.all, m)
	return nil
}

// get reads a value at a dotted path of values, nil when absent.
func get(vals map[string]any, path string) any {
	var cur any = vals
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func getString(vals map[string]any, path string) string {
	s, _ := get(vals, path).(string)
	return s
}

var (
	publicTargets = []string{"all", "inbox", "chat", "sms"}
	blobTargets   = []string{"all", "inbox", "email", "sms"}
	// keyTargets seal or open the channels' secrets: only they get the
	// keys.
	keyTargets   = []string{"all", "inbox", "chat", "email", "sms"}
	splitTargets = []string{"inbox", "router", "scheduler", "chat", "email", "sms"}
	checksumRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// checkInvariants checks what every render must satisfy; vals are the
// scenario's values (the chart's defaults apply to what they leave out).
func checkInvariants(t *testing.T, vals map[string]any, objs *objects) {
	t.Helper()
	for _, o := range objs.all {
		l := o.GetLabels()
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if l[k] == "" {
				t.Errorf("%s: label %s missing", o.GetName(), k)
			}
		}
		if o.GetNamespace() == "" {
			t.Errorf("%s: no namespace", o.GetName())
		}
	}

	mode := getString(vals, "mode")
	var want []string
	if mode == "all" {
		want = []string{"all"}
	} else {
		for _, tg := range splitTargets {
			if get(vals, tg+".enabled") != false {
				want = append(want, tg)
			}
		}
	}
	var got []string
	for _, d := range objs.deployments {
		got = append(got, d.Spec.Template.Labels["app.kubernetes.io/component"])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("mode %s: Deployments of %v, want %v", mode, got, want)
	}

	config := map[string]string{}
	for _, cm := range objs.configMaps {
		if _, ok := cm.Data["SB_KAFKA_BROKERS"]; ok {
			config = cm.Data
		}
	}
	if len(config) == 0 {
		t.Fatal("no ConfigMap holds SB_KAFKA_BROKERS")
	}
	delay, err := time.ParseDuration(config["SB_HTTP_SHUTDOWN_DELAY"])
	if err != nil || delay <= 0 {
		t.Errorf("SB_HTTP_SHUTDOWN_DELAY %q: want a positive duration", config["SB_HTTP_SHUTDOWN_DELAY"])
	}
	if config["SB_DATA_DIR"] != "/var/lib/switchboard" {
		t.Errorf("SB_DATA_DIR %q, want /var/lib/switchboard (the data emptyDir)", config["SB_DATA_DIR"])
	}
	for _, d := range objs.deployments {
		checkDeployment(t, vals, objs, d, delay)
	}
	for _, j := range objs.jobs {
		checkJob(t, vals, objs, j)
	}
	if get(vals, "kafka.createTopics.enabled") != false && len(objs.jobs) != 1 {
		t.Errorf("%d Jobs, want the create-topics hook", len(objs.jobs))
	}

	for _, s := range objs.services {
		d := matchDeployment(objs, s.Spec.Selector)
		if d == nil {
			t.Errorf("Service %s: selector %v matches no Deployment's pods", s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			if !hasContainerPort(d, p.TargetPort.String()) {
				t.Errorf("Service %s: target port %s is not a port of %s", s.Name, p.TargetPort.String(), d.Name)
			}
		}
	}
	for _, p := range objs.pdbs {
		if matchDeployment(objs, p.Spec.Selector.MatchLabels) == nil {
			t.Errorf("PodDisruptionBudget %s: selector matches no Deployment's pods", p.Name)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget %s: set exactly one of minAvailable and maxUnavailable", p.Name)
		}
	}
	for _, h := range objs.hpas {
		ref := h.Spec.ScaleTargetRef
		d := deploymentNamed(objs, ref.Name)
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || d == nil {
			t.Errorf("HorizontalPodAutoscaler %s: targets %s %s %s, not a Deployment of the chart", h.Name, ref.APIVersion, ref.Kind, ref.Name)
		}
		if len(h.Spec.Metrics) == 0 || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: no metric, or minReplicas above maxReplicas", h.Name)
		}
	}
	for _, np := range objs.netpols {
		if matchDeployment(objs, np.Spec.PodSelector.MatchLabels) == nil {
			t.Errorf("NetworkPolicy %s: selects no Deployment's pods", np.Name)
		}
	}
	if get(vals, "networkPolicy.enabled") == true && len(objs.netpols) != len(objs.deployments) {
		t.Errorf("%d NetworkPolicies for %d Deployments", len(objs.netpols), len(objs.deployments))
	}
	for _, sm := range objs.serviceMonitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range objs.services {
			if sel.Matches(labels.Set(s.Labels)) {
				n++
			}
		}
		if n != len(objs.services) {
			t.Errorf("ServiceMonitor %s: selects %d Services of %d", sm.Metadata.Name, n, len(objs.services))
		}
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor %s: endpoints %+v, want port http, path /metrics", sm.Metadata.Name, sm.Spec.Endpoints)
		}
		if sm.APIVersion != "monitoring.coreos.com/v1" {
			t.Errorf("ServiceMonitor %s: apiVersion %s", sm.Metadata.Name, sm.APIVersion)
		}
	}
	if (get(vals, "serviceMonitor.enabled") == true) != (len(objs.serviceMonitors) == 1) {
		t.Errorf("serviceMonitor.enabled %v: %d ServiceMonitors", get(vals, "serviceMonitor.enabled"), len(objs.serviceMonitors))
	}
	for _, ing := range objs.ingresses {
		checkIngress(t, objs, ing)
	}
	if (get(vals, "ingress.enabled") == true) != (len(objs.ingresses) == 1) {
		t.Errorf("ingress.enabled %v: %d Ingresses", get(vals, "ingress.enabled"), len(objs.ingresses))
	}
}

func checkDeployment(t *testing.T, vals map[string]any, objs *objects, d *appsv1.Deployment, delay time.Duration) {
	t.Helper()
	name := "Deployment " + d.Name
	pod := d.Spec.Template
	target := pod.Labels["app.kubernetes.io/component"]

	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("%s: selector %v does not match its pods' labels %v", name, d.Spec.Selector, pod.Labels)
	}
	for _, a := range []string{"checksum/config", "checksum/secret"} {
		if !checksumRE.MatchString(pod.Annotations[a]) {
			t.Errorf("%s: pod annotation %s is %q, want a SHA-256", name, a, pod.Annotations[a])
		}
	}

	var hpa *autoscalingv2.HorizontalPodAutoscaler
	for _, h := range objs.hpas {
		if h.Spec.ScaleTargetRef.Name == d.Name {
			hpa = h
		}
	}
	if hpa != nil && d.Spec.Replicas != nil {
		t.Errorf("%s: sets replicas while HorizontalPodAutoscaler %s scales it", name, hpa.Name)
	}
	if hpa == nil && d.Spec.Replicas == nil {
		t.Errorf("%s: sets no replicas and no HorizontalPodAutoscaler scales it", name)
	}

	grace := pod.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= delay+35*time.Second {
		t.Errorf("%s: terminationGracePeriodSeconds %v leaves no room after the shutdown delay %s and the drains", name, grace, delay)
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("%s: the service account token is mounted", name)
	}
	checkPodSecurity(t, name, pod.Spec.SecurityContext)
	for _, tsc := range pod.Spec.TopologySpreadConstraints {
		s, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err != nil || !s.Matches(labels.Set(pod.Labels)) {
			t.Errorf("%s: topology spread on %s does not select its own pods", name, tsc.TopologyKey)
		}
	}
	if sa := pod.Spec.ServiceAccountName; get(vals, "serviceAccount.create") != false && !named(objs.serviceAccounts, sa) {
		t.Errorf("%s: service account %s is not rendered", name, sa)
	}

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"-target=" + target}) {
		t.Errorf("%s: args %v, want [-target=%s]", name, c.Args, target)
	}
	checkProbe(t, name+" liveness", c.LivenessProbe, "/healthz")
	checkProbe(t, name+" readiness", c.ReadinessProbe, "/readyz")
	checkProbe(t, name+" startup", c.StartupProbe, "/healthz")
	if p := c.ReadinessProbe; p != nil && time.Duration(p.PeriodSeconds*p.FailureThreshold)*time.Second > delay {
		t.Errorf("%s: the readiness probe takes %ds to see a 503, more than the shutdown delay %s", name, p.PeriodSeconds*p.FailureThreshold, delay)
	}
	checkResources(t, name, c.Resources)
	checkContainerSecurity(t, name, c.SecurityContext)

	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, p := range []string{"/tmp", "/var/lib/switchboard"} {
		if v, ok := volumes[mounts[p]]; !ok || v.EmptyDir == nil {
			t.Errorf("%s: %s is not an emptyDir", name, p)
		}
	}
	for _, v := range pod.Spec.Volumes {
		if pvc := v.PersistentVolumeClaim; pvc != nil && !named(objs.pvcs, pvc.ClaimName) && pvc.ClaimName != getString(vals, "blob.persistence.existingClaim") {
			t.Errorf("%s: claim %s is neither rendered nor blob.persistence.existingClaim", name, pvc.ClaimName)
		}
	}

	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("%s: environment variable %s twice", name, e.Name)
		}
		env[e.Name] = e
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			checkSecretRef(t, vals, objs, name+" "+e.Name, ref.SecretKeyRef)
		}
	}
	for _, ef := range c.EnvFrom {
		if cm := ef.ConfigMapRef; cm != nil && !named(objs.configMaps, cm.Name) && (cm.Optional == nil || !*cm.Optional) {
			t.Errorf("%s: envFrom ConfigMap %s is not rendered", name, cm.Name)
		}
	}
	if _, ok := env["SB_REDIS_URL"]; !ok {
		t.Errorf("%s: no SB_REDIS_URL", name)
	}
	if _, ok := env["SB_DATABASE_URL"]; !ok {
		t.Errorf("%s: no SB_DATABASE_URL (every target has a schema, chat its deliveries)", name)
	}
	_, dir := env["SB_BLOB_DIR"]
	_, s3 := env["SB_BLOB_S3_ENDPOINT"]
	if blobs := slices.Contains(blobTargets, target); blobs != (dir || s3) || (dir && s3) {
		t.Errorf("%s: blob store dir=%v s3=%v, want exactly one on the inbox, email and sms", name, dir, s3)
	}
	if dir {
		if v := env["SB_BLOB_DIR"].Value; mounts[v] == "" || volumes[mounts[v]].PersistentVolumeClaim == nil {
			t.Errorf("%s: SB_BLOB_DIR %s is not a mounted claim", name, v)
		}
	}
	checkSecretKeys(t, vals, name, target, c, env, volumes)
}

// checkSecretKeys: the targets that seal or open secrets read the keys
// file from secrets.existingSecret, mounted read-only; the others get
// neither the file nor the Secret.
func checkSecretKeys(t *testing.T, vals map[string]any, name, target string, c corev1.Container, env map[string]corev1.EnvVar, volumes map[string]corev1.Volume) {
	t.Helper()
	file, hasFile := env["SB_SECRETS_KEYS_FILE"]
	var keys *corev1.SecretVolumeSource
	for _, v := range volumes {
		if v.Secret != nil && v.Secret.SecretName == getString(vals, "secrets.existingSecret") {
			keys = v.Secret
		}
	}
	if !slices.Contains(keyTargets, target) {
		if hasFile || keys != nil {
			t.Errorf("%s: %s holds no secret but gets the keys (file %v, volume %v)", name, target, hasFile, keys != nil)
		}
		return
	}
	if !hasFile || keys == nil {
		t.Fatalf("%s: no keys: SB_SECRETS_KEYS_FILE %v, a volume of Secret %q %v", name, hasFile, getString(vals, "secrets.existingSecret"), keys != nil)
	}
	key := getString(vals, "secrets.key")
	if key == "" {
		key = "secrets.keys"
	}
	if len(keys.Items) != 1 || keys.Items[0].Key != key || keys.DefaultMode == nil || *keys.DefaultMode != 0o440 {
		t.Errorf("%s: keys volume %+v, want the key %s alone, mode 0440", name, keys, key)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if v, ok := volumes[m.Name]; ok && v.Secret == keys && m.ReadOnly && m.MountPath+"/"+keys.Items[0].Path == file.Value {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("%s: SB_SECRETS_KEYS_FILE %s is not the keys volume, mounted read-only", name, file.Value)
	}
	active, hasActive := env["SB_SECRETS_ACTIVE_KEY"]
	if want := getString(vals, "secrets.activeKey"); want != active.Value || hasActive != (want != "") {
		t.Errorf("%s: SB_SECRETS_ACTIVE_KEY %q, want secrets.activeKey %q", name, active.Value, want)
	}
}

func checkJob(t *testing.T, vals map[string]any, objs *objects, j *batchv1.Job) {
	t.Helper()
	name := "Job " + j.Name
	hooks := strings.Split(j.Annotations["helm.sh/hook"], ",")
	if !slices.Contains(hooks, "pre-install") || !slices.Contains(hooks, "pre-upgrade") {
		t.Errorf("%s: helm.sh/hook %q, want pre-install,pre-upgrade", name, j.Annotations["helm.sh/hook"])
	}
	if !strings.Contains(j.Annotations["helm.sh/hook-delete-policy"], "before-hook-creation") {
		t.Errorf("%s: helm.sh/hook-delete-policy %q lacks before-hook-creation", name, j.Annotations["helm.sh/hook-delete-policy"])
	}
	pod := j.Spec.Template
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever && pod.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("%s: restartPolicy %s", name, pod.Spec.RestartPolicy)
	}
	if pod.Spec.ServiceAccountName != "" {
		t.Errorf("%s: service account %s does not exist yet when pre-install hooks run", name, pod.Spec.ServiceAccountName)
	}
	checkPodSecurity(t, name, pod.Spec.SecurityContext)
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	var brokers []string
	for _, b := range get(vals, "kafka.brokers").([]any) {
		brokers = append(brokers, b.(string))
	}
	if want := []string{"admin", "create-topics", "-kafka.brokers=" + strings.Join(brokers, ",")}; !slices.Equal(c.Args, want) {
		t.Errorf("%s: args %v, want %v", name, c.Args, want)
	}
	// Pre-install: the release's ConfigMaps and Secrets do not exist yet.
	// Values and the operator's own Secrets (Kafka's TLS files and SASL
	// password, mounted) are all it may read.
	if len(c.EnvFrom) > 0 {
		t.Errorf("%s: reads the environment from objects that do not exist yet at pre-install", name)
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Errorf("%s: variable %s reads an object that may not exist yet at pre-install", name, e.Name)
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == releaseName+"-switchboard" {
			t.Errorf("%s: volume %s mounts the release's Secret, which does not exist yet at pre-install", name, v.Name)
		}
		if v.ConfigMap != nil {
			t.Errorf("%s: volume %s mounts a ConfigMap, which does not exist yet at pre-install", name, v.Name)
		}
	}
	checkResources(t, name, c.Resources)
	checkContainerSecurity(t, name, c.SecurityContext)
}

func checkIngress(t *testing.T, objs *objects, ing *networkingv1.Ingress) {
	t.Helper()
	// The routes and the component that must serve them (or all).
	routes := map[string]string{
		"/v1/webhooks/chat": "chat",
		"/v1/webhooks/sms":  "sms",
		"/v1":               "inbox",
		"/openapi.json":     "inbox",
	}
	for _, r := range ing.Spec.Rules {
		seen := map[string]bool{}
		for _, p := range r.HTTP.Paths {
			want, ok := routes[p.Path]
			if !ok {
				t.Errorf("Ingress %s: path %s is not a public route", ing.Name, p.Path)
				continue
			}
			seen[p.Path] = true
			b := p.Backend.Service
			var svc *corev1.Service
			for _, s := range objs.services {
				if s.Name == b.Name {
					svc = s
				}
			}
			if svc == nil {
				t.Errorf("Ingress %s: %s goes to Service %s, not rendered", ing.Name, p.Path, b.Name)
				continue
			}
			if b.Port.Name != "http" {
				t.Errorf("Ingress %s: %s goes to port %+v, want http", ing.Name, p.Path, b.Port)
			}
			if got := svc.Spec.Selector["app.kubernetes.io/component"]; got != want && got != "all" {
				t.Errorf("Ingress %s: %s goes to %s, want %s", ing.Name, p.Path, got, want)
			}
		}
		for _, p := range []string{"/v1", "/openapi.json"} {
			if !seen[p] {
				t.Errorf("Ingress %s: no route for %s", ing.Name, p)
			}
		}
	}
}

func checkProbe(t *testing.T, name string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe: missing or not an HTTP GET", name)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
		t.Errorf("%s probe: GET %s on port %s, want %s on http", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
	}
}

func checkResources(t *testing.T, name string, r corev1.ResourceRequirements) {
	t.Helper()
	for _, k := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := r.Requests[k]; !ok || q.IsZero() {
			t.Errorf("%s: no %s request", name, k)
		}
		if q, ok := r.Limits[k]; !ok || q.IsZero() {
			t.Errorf("%s: no %s limit", name, k)
		}
	}
}

func checkPodSecurity(t *testing.T, name string, sc *corev1.PodSecurityContext) {
	t.Helper()
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod security context %+v, want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", name, sc)
	}
}

func checkContainerSecurity(t *testing.T, name string, sc *corev1.SecurityContext) {
	t.Helper()
	ok := sc != nil &&
		sc.RunAsNonRoot != nil && *sc.RunAsNonRoot &&
		sc.RunAsUser != nil && *sc.RunAsUser == 65532 &&
		sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem &&
		sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation &&
		sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0 &&
		sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	if !ok {
		t.Errorf("%s: container security context %+v, want runAsNonRoot, runAsUser 65532, readOnlyRootFilesystem, no privilege escalation, capabilities ALL dropped, seccomp RuntimeDefault", name, sc)
	}
}

// checkSecretRef checks that a reference goes to the chart's Secret (which
// has the key) or to an existing Secret named in the values.
func checkSecretRef(t *testing.T, vals map[string]any, objs *objects, name string, ref *corev1.SecretKeySelector) {
	t.Helper()
	for _, s := range objs.secrets {
		if s.Name == ref.Name {
			if _, ok := s.Data[ref.Key]; !ok {
				t.Errorf("%s: Secret %s has no key %s", name, ref.Name, ref.Key)
			}
			return
		}
	}
	for _, p := range []string{"database.existingSecret", "redis.existingSecret", "blob.s3.existingSecret"} {
		if ref.Name != "" && ref.Name == getString(vals, p) {
			return
		}
	}
	t.Errorf("%s: Secret %s is neither rendered nor named by an existingSecret value", name, ref.Name)
}

func matchDeployment(objs *objects, selector map[string]string) *appsv1.Deployment {
	if len(selector) == 0 {
		return nil
	}
	for _, d := range objs.deployments {
		if labels.SelectorFromSet(selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			return d
		}
	}
	return nil
}

func deploymentNamed(objs *objects, name string) *appsv1.Deployment {
	for _, d := range objs.deployments {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func hasContainerPort(d *appsv1.Deployment, port string) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
				return true
			}
		}
	}
	return false
}

func named[T metav1.Object](list []T, name string) bool {
	for _, o := range list {
		if o.GetName() == name {
			return true
		}
	}
	return false
}
