package dev.searchengine;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.codelibs.opensearch.runner.OpenSearchRunner;
import org.opensearch.cluster.health.ClusterHealthStatus;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.http.HttpServerTransport;

/**
 * Starts ONE embedded OpenSearch node for tests.
 *
 * Usage: java -cp CLASSPATH [-Dsearch.engine.cleanOnExit=true] dev.searchengine.Main [httpPort|0] [baseDir]
 *
 * httpPort 0 (default) binds an ephemeral port. baseDir defaults to a fresh temp dir.
 * When the node is up and the cluster is yellow/green, prints exactly one line
 * "READY <httpPort>" to stdout. Everything else (OpenSearch logs, runner chatter) goes to
 * stderr. Stops on SIGTERM/SIGINT or when stdin is closed (parent died).
 */
public final class Main {

    private static final String LOG4J2 = String.join("\n",
            "status = error",
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.target = SYSTEM_ERR",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n",
            "rootLogger.level = ${sys:search.engine.log.level:-warn}",
            "rootLogger.appenderRef.console.ref = console",
            "logger.deprecation.name = org.opensearch.deprecation",
            "logger.deprecation.level = error",
            "");

    private Main() {
    }

    public static void main(final String[] args) throws Exception {
        final String httpPort = args.length > 0 ? args[0] : "0";
        final Path basePath = args.length > 1 ? Path.of(args[1]) : Files.createTempDirectory("search-engine");
        Files.createDirectories(basePath);

        // Keep stdout for the READY protocol only: the runner prints its chatter with System.out.
        final java.io.PrintStream realOut = new java.io.PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true,
                StandardCharsets.UTF_8);
        System.setOut(System.err);

        // Our own logging config (console -> stderr, WARN); the runner only copies its default if absent.
        final Path confDir = basePath.resolve("node_1").resolve("config");
        Files.createDirectories(confDir);
        Files.writeString(confDir.resolve("log4j2.properties"), LOG4J2, StandardCharsets.UTF_8);

        final OpenSearchRunner runner = new OpenSearchRunner();
        runner.setMaxHttpPort(-1); // do not probe 9201.. ; we set http.port ourselves
        runner.onBuild((index, settings) -> {
            settings.put("http.port", httpPort);
            settings.put("transport.port", "0");
            settings.put("network.host", "127.0.0.1");
            settings.put("discovery.type", "single-node");
            settings.put("cluster.routing.allocation.disk.threshold_enabled", false);
            settings.put("action.auto_create_index", true);
            settings.put("bootstrap.memory_lock", false);
            settings.put("http.cors.enabled", false);
        });

        final CountDownLatch stopped = new CountDownLatch(1);
        final boolean cleanOnExit = Boolean.getBoolean("search.engine.cleanOnExit");
        final Thread hook = new Thread(() -> {
            closeQuietly(runner);
            if (cleanOnExit) {
                try {
                    runner.clean(); // deletes basePath
                } catch (final Throwable t) {
                    System.err.println("search-engine: could not delete " + basePath + ": " + t);
                }
            }
            stopped.countDown();
        }, "search-engine-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);

        try {
            runner.build(OpenSearchRunner.newConfigs()
                    .basePath(basePath.toAbsolutePath().toString())
                    .numOfNode(1)
                    .clusterName("search-engine-test")
                    .moduleTypes(String.join(",",
                            "org.opensearch.analysis.common.CommonAnalysisModulePlugin",
                            "org.opensearch.index.mapper.MapperExtrasModulePlugin",
                            "org.opensearch.join.ParentJoinModulePlugin",
                            "org.opensearch.index.reindex.ReindexModulePlugin",
                            "org.opensearch.painless.PainlessModulePlugin",
                            "org.opensearch.script.mustache.MustacheModulePlugin",
                            "org.opensearch.search.aggregations.matrix.MatrixAggregationModulePlugin",
                            "org.opensearch.ingest.common.IngestCommonModulePlugin",
                            "org.opensearch.transport.Netty4ModulePlugin"))
                    .build());

            final ClusterHealthStatus status = runner.client().admin().cluster().prepareHealth()
                    .setWaitForYellowStatus().setTimeout(TimeValue.timeValueSeconds(120)).get().getStatus();
            if (status == ClusterHealthStatus.RED) {
                throw new IllegalStateException("cluster health is RED");
            }
            final HttpServerTransport http = runner.node().injector().getInstance(HttpServerTransport.class);
            final InetSocketAddress addr = http.boundAddress().publishAddress().address();
            realOut.println("READY " + addr.getPort());
            realOut.flush();
        } catch (final Throwable t) {
            System.err.println("search-engine: failed to start: " + t);
            t.printStackTrace(System.err);
            Runtime.getRuntime().halt(1);
        }

        // Parent watchdog: when stdin reaches EOF (parent closed the pipe or died), shut down.
        final Thread stdinWatcher = new Thread(() -> {
            try (InputStream in = System.in) {
                final byte[] buf = new byte[256];
                while (in.read(buf) >= 0) {
                    // ignore input
                }
            } catch (final IOException e) {
                // treat as EOF
            }
            System.exit(0); // runs the shutdown hook
        }, "search-engine-stdin-watch");
        stdinWatcher.setDaemon(true);
        stdinWatcher.start();

        stopped.await();
    }

    private static void closeQuietly(final OpenSearchRunner runner) {
        try {
            if (!runner.isClosed()) {
                runner.close();
            }
        } catch (final Throwable t) {
            System.err.println("search-engine: error while closing: " + t);
        }
    }
}
