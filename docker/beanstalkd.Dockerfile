# beanstalkd from Debian's package: the same 1.12 build the test suite runs against.
FROM debian:bookworm-slim

# The package's postinst tries to start the service; a policy that denies it keeps the
# build from ever running a server.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends beanstalkd \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o beanstalkd -g beanstalkd /var/lib/beanstalkd

# A fresh named volume copies this directory's ownership, so the unprivileged user can write
# the binlog there.
VOLUME /var/lib/beanstalkd
USER beanstalkd
EXPOSE 11300

# 0.0.0.0 because clients reach the container through its network interface; beanstalkd has no
# authentication, so whoever runs this image must publish the port on loopback only.
CMD ["beanstalkd", "-l", "0.0.0.0", "-p", "11300", "-b", "/var/lib/beanstalkd"]
