/* Issue 12, session 4: can a 64 KiB response's head leave in the body's send? Sender CPU
 * per response (the thread's CPU clock; loopback, so the receiver's TCP work is charged
 * to it as in the server) for: send(head, MSG_MORE) + sendfile(file), as uring-server's
 * inline path does; and write(head → pipe) + splice(file → pipe) + splice(pipe → socket),
 * where head and body leave in one tcp_sendmsg. 16 connections, each answering a 1-byte
 * request at a time, sender on CPU 0, reader on CPU 1. Result in BENCHMARKS.md.
 * Build and run: gcc -O2 -o /tmp/head-fold scripts/static-head-fold.c -lpthread &&
 *                /tmp/head-fold 65536 60000      (file bytes, responses per round)
 * The file is written under /tmp (on the root filesystem here, so it is page-cached);
 * FILE_BYTES must fit the 256 KiB pipe with the head.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>
#define K 16
static void pin(int c){cpu_set_t s;CPU_ZERO(&s);CPU_SET(c,&s);sched_setaffinity(0,sizeof s,&s);}
static int cl[K], sv[K]; static int size; static volatile int stop;
#define HEAD 220
static void *reader(void *a){pin(1);char *b=malloc(1<<20);
  for(int i=0;i<K;i++) send(cl[i],"r",1,0);
  for(;!stop;){ for(int i=0;i<K;i++){ ssize_t want=size+HEAD; while(want>0){ssize_t n=recv(cl[i],b,want,0); if(n<=0) return 0; want-=n;} send(cl[i],"r",1,0);} }
  return 0;}
static double tcpu(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
int main(int argc,char**argv){
  size=atoi(argv[1]); int n=atoi(argv[2]);
  pin(0);
  int f=open("/tmp/static-head-fold.data",O_RDWR|O_CREAT|O_TRUNC,0644);
  char *d=malloc(size); for(int i=0;i<size;i++)d[i]=i; write(f,d,size);
  int l=socket(AF_INET,SOCK_STREAM,0); struct sockaddr_in a={.sin_family=AF_INET,.sin_addr.s_addr=htonl(0x7f000001)};
  bind(l,(void*)&a,sizeof a); socklen_t al=sizeof a; getsockname(l,(void*)&a,&al); listen(l,K);
  int one=1;
  for(int i=0;i<K;i++){cl[i]=socket(AF_INET,SOCK_STREAM,0); connect(cl[i],(void*)&a,sizeof a); sv[i]=accept(l,0,0); setsockopt(sv[i],IPPROTO_TCP,TCP_NODELAY,&one,sizeof one); setsockopt(cl[i],IPPROTO_TCP,TCP_NODELAY,&one,sizeof one);}
  pthread_t t; pthread_create(&t,0,reader,0);
  char head[HEAD]; memset(head,'h',sizeof head); char rq[4];
  int p[2]; pipe(p); fcntl(p[1],F_SETPIPE_SZ,256*1024);
  for(int round=0;round<4;round++){
    for(int mode=0;mode<2;mode++){
      double t0=tcpu();
      for(int j=0;j<n;j++){ int s=sv[j%K];
        if(recv(s,rq,1,0)!=1){perror("rq");exit(1);}
        if(mode==0){ send(s,head,HEAD,MSG_MORE); off_t o=0; ssize_t left=size; while(left>0){ssize_t k=sendfile(s,f,&o,left); if(k<=0){perror("sf");exit(1);} left-=k;} }
        else { write(p[1],head,HEAD); loff_t o=0; ssize_t k=splice(f,&o,p[1],0,size,0); if(k!=size){perror("in");exit(1);} ssize_t left=size+HEAD; while(left>0){ssize_t m=splice(p[0],0,s,0,left,0); if(m<=0){perror("out");exit(1);} left-=m;} }
      }
      double us=(tcpu()-t0)/n;
      printf("round %d %-20s %.2f us/resp\n",round,mode==0?"send+sendfile":"write+splice+splice",us);
    }
  }
  stop=1; return 0;
}
