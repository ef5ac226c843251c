package interop;

import java.util.Map;
import java.util.TreeMap;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.springframework.cloud.zookeeper.discovery.ZookeeperInstance;

/**
 * Usage: Main zkConnect basePath service. Prints one "READ id address:port
 * meta={...} uri=..." line per instance Curator finds, registers "java-1",
 * prints "REGISTERED java-1", and keeps its session until stdin closes.
 */
public class Main {
    public static void main(String[] args) throws Exception {
        String zk = args[0], base = args[1], service = args[2];
        CuratorFramework client = CuratorFrameworkFactory.newClient(zk, new RetryOneTime(500));
        client.start();
        client.blockUntilConnected();
        ServiceDiscovery<ZookeeperInstance> discovery = ServiceDiscoveryBuilder.builder(ZookeeperInstance.class)
            .client(client).basePath(base)
            .serializer(new JsonInstanceSerializer<>(ZookeeperInstance.class)).build();
        discovery.start();
        for (ServiceInstance<ZookeeperInstance> si : discovery.queryForInstances(service)) {
            System.out.println("READ " + si.getId() + " " + si.getAddress() + ":" + si.getPort()
                + " meta=" + new TreeMap<>(si.getPayload().getMetadata()) + " uri=" + si.buildUriSpec());
        }
        ServiceInstance<ZookeeperInstance> mine = ServiceInstance.<ZookeeperInstance>builder()
            .name(service).id("java-1").address("10.9.9.9").port(9999)
            .payload(new ZookeeperInstance("java-1", service, Map.of("lang", "java")))
            .uriSpec(new UriSpec("{scheme}://{address}:{port}")).build();
        discovery.registerService(mine);
        System.out.println("REGISTERED java-1");
        System.out.flush();
        System.in.read();
        discovery.close();
        client.close();
    }
}
