// Consume is the Java push consumer of consumer's BenchmarkConsumeThroughput:
// the Apache RocketMQ Java client (the rocketmq-client jar that
// scripts/rocketmq.sh downloads with the broker) reading a topic from its
// first offset with a no-op listener on a fixed pool of threads, as a Java
// application would.
//
// Usage: java -cp '<lib>/*:<classes>' Consume NAMESRV GROUP TOPIC SKIP N THREADS INSTANCE
//
// It prints "STARTED" once the consumer has started and, after the N-th
// message, "RESULT <ns> <cpu-ns> <count>": the wall time and this JVM's CPU
// time (user+sys of every thread, OperatingSystemMXBean.getProcessCpuTime)
// from the SKIP-th message (at least 1) to the N-th, the same window the Go
// contenders measure, which leaves the JVM's start-up and first
// compilations out. Then it shuts the consumer down and exits.
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;

public final class Consume {
    public static void main(String[] args) throws Exception {
        if (args.length != 7) {
            System.err.println("usage: Consume NAMESRV GROUP TOPIC SKIP N THREADS INSTANCE");
            System.exit(2);
        }
        final long skip = Math.max(1, Long.parseLong(args[3]));
        final long n = Long.parseLong(args[4]);
        final int threads = Integer.parseInt(args[5]);
        final com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

        final AtomicLong count = new AtomicLong();
        final AtomicLong startNanos = new AtomicLong();
        final AtomicLong startCpu = new AtomicLong();
        final long[] end = new long[2]; // wall, cpu; written once, before done counts down
        final CountDownLatch done = new CountDownLatch(1);

        DefaultMQPushConsumer c = new DefaultMQPushConsumer(args[1]);
        c.setNamesrvAddr(args[0]);
        c.setInstanceName(args[6]);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.setConsumeThreadMin(threads);
        c.setConsumeThreadMax(threads);
        c.subscribe(args[2], "*");
        c.registerMessageListener((MessageListenerConcurrently) (List<MessageExt> msgs, org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyContext ctx) -> {
            long k = count.addAndGet(msgs.size());
            if (k >= skip && k - msgs.size() < skip) { // one call crosses skip
                startCpu.set(os.getProcessCpuTime());
                startNanos.set(System.nanoTime());
            }
            if (k >= n && k - msgs.size() < n) {
                end[0] = System.nanoTime();
                end[1] = os.getProcessCpuTime();
                done.countDown();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        System.out.println("STARTED");
        System.out.flush();
        done.await();
        System.out.println("RESULT " + (end[0] - startNanos.get()) + " " + (end[1] - startCpu.get()) + " " + count.get());
        System.out.flush();
        c.shutdown();
        System.exit(0);
    }
}
