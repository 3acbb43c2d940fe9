import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/metrics.ts";

describe("createMetrics", () => {
  it("renders every metric with the values it was given", async () => {
    const metrics = createMetrics();
    const http = { method: "POST", route: "/v1/chat/completions", status: 200 };
    metrics.httpRequests.inc(http);
    metrics.httpRequests.inc(http);
    metrics.httpRequestDuration.observe(http, 0.7);
    metrics.chatCompletions.inc({ model: "sonnet", stream: "true", status: 200 });
    metrics.tokens.inc({ model: "sonnet", type: "prompt" }, 132);
    metrics.tokens.inc({ model: "sonnet", type: "completion" }, 5);
    metrics.tokens.inc({ model: "sonnet", type: "cached" }, 100);
    metrics.claudeProcesses.set(3);
    metrics.claudeProcessesWaitingForTools.set(1);
    metrics.queueDepth.inc();
    metrics.queueDepth.inc();
    metrics.queueRejections.inc();

    const { contentType, body } = await metrics.render();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = body.split("\n");
    for (const line of [
      'http_requests_total{method="POST",route="/v1/chat/completions",status="200"} 2',
      'http_request_duration_seconds_bucket{le="0.5",method="POST",route="/v1/chat/completions",status="200"} 0',
      'http_request_duration_seconds_bucket{le="1",method="POST",route="/v1/chat/completions",status="200"} 1',
      'http_request_duration_seconds_sum{method="POST",route="/v1/chat/completions",status="200"} 0.7',
      'http_request_duration_seconds_count{method="POST",route="/v1/chat/completions",status="200"} 1',
      'chat_completions_total{model="sonnet",stream="true",status="200"} 1',
      'tokens_total{model="sonnet",type="prompt"} 132',
      'tokens_total{model="sonnet",type="completion"} 5',
      'tokens_total{model="sonnet",type="cached"} 100',
      "claude_processes 3",
      "claude_processes_waiting_for_tools 1",
      "queue_depth 2",
      "queue_rejections_total 1",
    ]) {
      expect(lines).toContain(line);
    }
    expect(body).toContain("# TYPE http_request_duration_seconds histogram");
    expect(body).toContain("# TYPE claude_processes gauge");
    // No default process metrics unless asked for.
    expect(body).not.toContain("process_");
  });

  it("exports the resident set size when given a source for it", async () => {
    let rss = 1000;
    const metrics = createMetrics({ rss: () => rss });
    expect((await metrics.render()).body).toContain("process_resident_memory_bytes 1000");
    rss = 2048;
    expect((await metrics.render()).body).toContain("process_resident_memory_bytes 2048");
  });

  it("keeps separate registries per instance", async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.queueRejections.inc(5);
    expect((await a.render()).body).toContain("queue_rejections_total 5");
    expect((await b.render()).body).toContain("queue_rejections_total 0");
  });
});
