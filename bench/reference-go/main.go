// The Go peer of bench/operator_scale.py: a minimal controller-runtime
// operator that reconciles PhoenixProcessPipelines the way Phoenix does: it
// acknowledges a new generation with a first status ("Deploying"), then
// server-side applies the pipeline's ConfigMap, Deployment,
// PodDisruptionBudget and Service and writes the status that says they are
// applied. It does not render: the bench gives it the manifests Phoenix
// rendered, so the rendering work is Phoenix's alone.
//
//	reference-go --namespace NS --manifests FILE [--qps N --burst N] [--workers N]
//
// FILE is a JSON object: pipeline name -> its child objects, without owner
// references (the pipeline's uid is known only once it exists).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/flowcontrol"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

const fieldOwner = "reference-go"

var pipelineKind = schema.GroupVersionKind{Group: "phoenix.io", Version: "v1alpha1", Kind: "PhoenixProcessPipeline"}

type reconciler struct {
	client    client.Client
	manifests map[string][]map[string]any
}

func (r *reconciler) Reconcile(ctx context.Context, request ctrl.Request) (ctrl.Result, error) {
	pipeline := &unstructured.Unstructured{}
	pipeline.SetGroupVersionKind(pipelineKind)
	if err := r.client.Get(ctx, request.NamespacedName, pipeline); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	objects, known := r.manifests[request.Name]
	if !known {
		return ctrl.Result{}, nil
	}
	if err := r.acknowledge(ctx, pipeline); err != nil {
		return ctrl.Result{}, err
	}
	owner := map[string]any{
		"apiVersion": pipelineKind.GroupVersion().String(), "kind": pipelineKind.Kind,
		"name": pipeline.GetName(), "uid": string(pipeline.GetUID()),
		"controller": true, "blockOwnerDeletion": true,
	}
	for _, object := range objects {
		child := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(object)}
		child.SetNamespace(request.Namespace)
		if err := unstructured.SetNestedSlice(child.Object, []any{owner}, "metadata", "ownerReferences"); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(child), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, r.writeReady(ctx, pipeline, "WaitingForCollectors", "the children are applied")
}

// acknowledge writes the first status of a generation not seen yet, as Phoenix's handler does before
// its work queue applies anything.
func (r *reconciler) acknowledge(ctx context.Context, pipeline *unstructured.Unstructured) error {
	seen, _, err := unstructured.NestedInt64(pipeline.Object, "status", "observedGeneration")
	if err != nil || seen == pipeline.GetGeneration() {
		return err
	}
	return r.writeReady(ctx, pipeline, "Deploying", "applying the children")
}

func (r *reconciler) writeReady(ctx context.Context, pipeline *unstructured.Unstructured, reason, message string) error {
	now := time.Now().UTC().Format(time.RFC3339)
	base := pipeline.DeepCopy()
	status := map[string]any{
		"observedGeneration": pipeline.GetGeneration(),
		"conditions": []any{map[string]any{
			"type": "Ready", "status": "False", "reason": reason,
			"message": message, "lastTransitionTime": now,
			"observedGeneration": pipeline.GetGeneration(),
		}},
	}
	if err := unstructured.SetNestedMap(pipeline.Object, status, "status"); err != nil {
		return err
	}
	return r.client.Status().Patch(ctx, pipeline, client.MergeFrom(base))
}

func main() {
	namespace := flag.String("namespace", "", "the namespace whose pipelines it reconciles")
	manifestsFile := flag.String("manifests", "", "JSON: pipeline name -> its rendered children")
	qps := flag.Float64("qps", 20, "requests per second, all clients together (<= 0: no limit)")
	burst := flag.Int("burst", 30, "the client's burst")
	workers := flag.Int("workers", 16, "concurrent reconciles")
	flag.Parse()
	if err := run(*namespace, *manifestsFile, float32(*qps), *burst, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "reference-go:", err)
		os.Exit(1)
	}
}

func run(namespace, manifestsFile string, qps float32, burst, workers int) error {
	text, err := os.ReadFile(manifestsFile)
	if err != nil {
		return err
	}
	manifests := map[string][]map[string]any{}
	if err := json.Unmarshal(text, &manifests); err != nil {
		return fmt.Errorf("%s: %w", manifestsFile, err)
	}
	config, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	// one limiter for every client: controller-runtime gives each API group its own, which would multiply the limit
	config.RateLimiter = nil
	if qps > 0 {
		config.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(qps, burst)
	} else {
		config.QPS = -1
	}
	manager, err := ctrl.NewManager(config, ctrl.Options{
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{namespace: {}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return err
	}
	watched := &unstructured.Unstructured{}
	watched.SetGroupVersionKind(pipelineKind)
	err = ctrl.NewControllerManagedBy(manager).
		For(watched, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(&reconciler{client: manager.GetClient(), manifests: manifests})
	if err != nil {
		return err
	}
	return manager.Start(ctrl.SetupSignalHandler())
}
